package smtpout_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// TestSendRealServer sends through the real MTA .ci/mail.sh starts
// (Postfix, which hands every recipient to the test user's Dovecot
// mailbox) and reads the mail back over IMAP: what a customer's provider
// would receive, DKIM signature included.
func TestSendRealServer(t *testing.T) {
	smtpURL := testenv.URL(t, testenv.SMTPURL, "real SMTP")
	imapURL := testenv.URL(t, testenv.IMAPURL, "real IMAP")
	py := pythonDKIM(t)

	su, err := url.Parse(smtpURL)
	if err != nil {
		t.Fatalf("%s does not parse", testenv.SMTPURL)
	}
	if !su.Query().Has("starttls") {
		// The test listener speaks plain SMTP on loopback.
		q := su.Query()
		q.Set("starttls", "off")
		su.RawQuery = q.Encode()
	}
	d := testDKIMs()["rsa"]
	c, err := smtpout.New(smtpout.Config{URL: su.String(), HeloName: "switchboard.shop.example", DKIM: d, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	var nonce [8]byte
	rand.Read(nonce[:])
	m := fullMail()
	m.MessageID = "m.real." + hex.EncodeToString(nonce[:]) + "@mail.shop.example"
	m.Date = time.Now().Truncate(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := c.Send(ctx, m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := fetchByMessageID(t, imapURL, m.MessageID)

	// The MTA only adds trace fields above ours; everything we sent,
	// signature first, arrives byte for byte.
	if !bytes.HasSuffix(got, raw) {
		t.Fatalf("the received copy differs from what was sent:\n--- sent\n%.1500s\n--- received\n%.1800s", raw, got)
	}
	tree, h := mustParse(t, got)
	if s, _ := h.Subject(); s != m.Subject {
		t.Errorf("Subject %q", s)
	}
	if id, _ := h.MessageID(); id != m.MessageID {
		t.Errorf("Message-ID %q", id)
	}
	if h.Has("Bcc") || bytes.Contains(got, []byte("Secret Auditor")) {
		t.Errorf("Bcc shows in the delivered copy")
	}
	if want := "multipart/mixed[multipart/alternative[text/plain multipart/related[text/html image/png]] application/pdf]"; shape(tree) != want {
		t.Fatalf("structure %s", shape(tree))
	}
	if string(tree.kids[0].kids[0].body) != m.Text || string(tree.kids[0].kids[1].kids[0].body) != m.HTML {
		t.Errorf("text or html changed in transit")
	}
	if !bytes.Equal(tree.kids[1].body, pdfBytes) || !bytes.Equal(tree.kids[0].kids[1].kids[1].body, pngBytes) {
		t.Errorf("attachment bytes changed in transit")
	}
	if v := goVerify(t, d, got); v.Err != nil {
		t.Errorf("go-msgauth on the received copy: %v", v.Err)
	}
	if ok, log := pyVerify(t, py, d, got); !ok {
		t.Errorf("dkimpy on the received copy failed:\n%s", log)
	}
}

// fetchByMessageID waits for the message to arrive in INBOX, returns it
// and expunges it.
func fetchByMessageID(t *testing.T, imapURL, id string) []byte {
	t.Helper()
	u, err := url.Parse(imapURL)
	if err != nil || u.User == nil {
		t.Fatalf("%s must be imap://user:password@host:port", testenv.IMAPURL)
	}
	pass, _ := u.User.Password()
	ic, err := imapclient.DialInsecure(u.Host, nil)
	if err != nil {
		t.Fatalf("imap dial: %v", err)
	}
	defer ic.Close()
	if err := ic.Login(u.User.Username(), pass).Wait(); err != nil {
		t.Fatalf("imap login: %v", err)
	}
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("imap select: %v", err)
	}
	crit := &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: id}}}
	var uids []imap.UID
	deadline := time.Now().Add(30 * time.Second)
	for len(uids) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("message <%s> did not arrive within 30s", id)
		}
		time.Sleep(200 * time.Millisecond)
		if err := ic.Noop().Wait(); err != nil {
			t.Fatalf("imap noop: %v", err)
		}
		data, err := ic.UIDSearch(crit, nil).Wait()
		if err != nil {
			t.Fatalf("imap search: %v", err)
		}
		uids = data.AllUIDs()
	}
	set := imap.UIDSetNum(uids...)
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := ic.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) == 0 {
		t.Fatalf("imap fetch: %d messages, %v", len(msgs), err)
	}
	body := msgs[0].FindBodySection(section)
	if len(body) == 0 {
		t.Fatal("imap fetch returned no body")
	}
	// Leave the shared mailbox as it was.
	if err := ic.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Logf("imap store \\Deleted: %v", err)
	} else if err := ic.UIDExpunge(set).Close(); err != nil {
		t.Logf("imap expunge: %v", err)
	}
	if !strings.Contains(string(body), id) {
		t.Fatalf("fetched another message")
	}
	return body
}
