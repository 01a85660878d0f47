package connect

import (
	"context"
	"fmt"
	"net/mail"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/check"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// EmailTest is what testing e-mail connections found, one result per
// mailbox and one for the relay.
type EmailTest struct {
	IMAP []MailboxTest
	SMTP *check.Result
}

// MailboxTest is one mailbox's check; Mailbox names it without its
// password.
type MailboxTest struct {
	Mailbox string
	check.Result
}

// TestEmail logs in to each IMAP mailbox and lists it, and sends a test
// message through the SMTP relay to the admin, with the server's exact
// answer at the first failing step. Blank arguments test the settings in
// use, so that an admin can test what they typed before saving (admins).
func (s *Service) TestEmail(ctx context.Context, actor switchboard.Actor, imapURLs, smtpURL, from string) (EmailTest, error) {
	if err := require(actor, "test e-mail connections"); err != nil {
		return EmailTest{}, err
	}
	c := s.Current()
	imapURLs, smtpURL, from = firstNonEmpty(imapURLs, c.IMAPURLs), firstNonEmpty(smtpURL, c.SMTPURL), firstNonEmpty(from, c.EmailFrom)
	var out EmailTest
	for _, u := range strings.Split(imapURLs, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out.IMAP = append(out.IMAP, MailboxTest{Mailbox: redactURL(u), Result: check.IMAP(ctx, u)})
		}
	}
	if smtpURL != "" {
		if from == "" {
			return out, switchboard.Errorf(switchboard.EINVALID, "testing the relay needs the From address")
		}
		a, err := mail.ParseAddress(from)
		if err != nil {
			return out, switchboard.Errorf(switchboard.EINVALID, "From address %q: %v", from, err)
		}
		me, err := s.Inbox.GetAgent(ctx, actor.ID)
		if err != nil {
			return out, err
		}
		r := check.SMTP(ctx, smtpURL, a.Address, me.Email)
		out.SMTP = &r
	}
	if len(out.IMAP) == 0 && out.SMTP == nil {
		return out, switchboard.Errorf(switchboard.EINVALID, "enter an IMAP mailbox or an SMTP relay to test")
	}
	return out, nil
}

// redactURL drops a URL's password.
func redactURL(raw string) string {
	i := strings.Index(raw, "://")
	at := strings.LastIndex(raw, "@")
	if i < 0 || at < i {
		return raw
	}
	userinfo := raw[i+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return raw[:i+3] + user + ":***" + raw[at:]
	}
	return raw
}

// DKIMRecord is the DNS record that publishes a DKIM key.
type DKIMRecord struct {
	Name string // selector._domainkey.domain
	TXT  string // v=DKIM1; k=rsa; p=...
}

// GenerateDKIM makes a DKIM key for the From address's domain, stores it
// (sealed) with its selector, and returns the record to publish (admins).
func (s *Service) GenerateDKIM(ctx context.Context, actor switchboard.Actor, selector string) (DKIMRecord, error) {
	if err := require(actor, "generate DKIM keys"); err != nil {
		return DKIMRecord{}, err
	}
	c := s.Current()
	if c.EmailFrom == "" {
		return DKIMRecord{}, switchboard.Errorf(switchboard.EINVALID, "set the From address first: the key signs for its domain")
	}
	a, err := mail.ParseAddress(c.EmailFrom)
	if err != nil {
		return DKIMRecord{}, switchboard.Errorf(switchboard.EINVALID, "From address: %v", err)
	}
	selector = strings.TrimSpace(selector)
	if selector == "" {
		selector = "switchboard" + s.now().Format("200601")
	}
	domain := a.Address[strings.LastIndexByte(a.Address, '@')+1:]
	d, pemKey, err := smtpout.GenerateDKIM(domain, selector)
	if err != nil {
		return DKIMRecord{}, switchboard.Errorf(switchboard.EINVALID, "%v", err)
	}
	if _, err := s.Inbox.PutSettings(ctx, actor, inbox.SettingsChange{Set: map[string]string{"DKIM_SELECTOR": selector, "DKIM_KEY": string(pemKey)}}); err != nil {
		return DKIMRecord{}, err
	}
	rec := DKIMRecord{Name: d.RecordName(), TXT: d.TXTRecord()}
	s.audit(ctx, actor, "dkim.generate", rec.Name, fmt.Sprintf("RSA-%d key generated; publish TXT %s", smtpout.GenerateBits, rec.Name))
	return rec, nil
}

// DKIMPublished returns the record of the DKIM key in use, or false.
func (s *Service) DKIMPublished() (DKIMRecord, bool) {
	c := s.Current()
	if c.DKIMSelector == "" || c.DKIMKey == "" || c.EmailFrom == "" {
		return DKIMRecord{}, false
	}
	a, err := mail.ParseAddress(c.EmailFrom)
	if err != nil {
		return DKIMRecord{}, false
	}
	key, err := smtpout.ParseDKIMKey([]byte(c.DKIMKey))
	if err != nil {
		return DKIMRecord{}, false
	}
	d := &smtpout.DKIM{Domain: a.Address[strings.LastIndexByte(a.Address, '@')+1:], Selector: c.DKIMSelector, Key: key}
	return DKIMRecord{Name: d.RecordName(), TXT: d.TXTRecord()}, true
}
