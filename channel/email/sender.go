package email

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

// MaxAttachmentBytes bounds the files of one outbound mail together: what
// Gmail and most relays accept once base64 has grown them by a third.
const MaxAttachmentBytes = 25 << 20

// AutoMailWindow is how often one address may receive an automatic mail.
const AutoMailWindow = 24 * time.Hour

// Mailer sends one built mail; *smtpout.Client is the production one.
type Mailer interface {
	Send(ctx context.Context, m smtpout.Mail) ([]byte, error)
}

// Threads is what the sender reads and records around a send.
type Threads interface {
	EmailThread(ctx context.Context, conversationID string) (switchboard.EmailThread, error)
	TryAutoMail(ctx context.Context, address, messageID string, window time.Duration) (bool, error)
}

// SenderConfig wires outbound e-mail.
type SenderConfig struct {
	Mailer  Mailer
	From    smtpout.Address // SWITCHBOARD_EMAIL_FROM
	Tokens  *Tokens         // Reply-To addresses; nil: From
	Threads Threads
	Blobs   switchboard.BlobStore
	Clock   switchboard.Clock
}

// Sender sends replies on the e-mail channel, and on the web form's, whose
// customers are answered by e-mail. It is also the channels' policy.
type Sender struct{ cfg SenderConfig }

// NewSender returns the outbound side of the channel.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.Clock == nil {
		cfg.Clock = switchboard.SystemClock{}
	}
	return &Sender{cfg: cfg}
}

// MessageID is the Message-ID of our mail for a stored message: derived
// from the message's id, so a send retried after a crash carries the same
// id and the customer's mail client shows it once.
func (s *Sender) MessageID(messageID string) string {
	return "sb." + messageID + "@" + domainOf(s.cfg.From.Addr)
}

// Check is the channel's policy: a reply needs the customer's address,
// some text, and files that fit in one mail.
func (s *Sender) Check(r switchboard.Recipient, d switchboard.Draft, now time.Time) switchboard.Decision {
	dec := switchboard.Decision{Channel: d.Channel, Allowed: true, Details: map[string]any{"max_attachment_bytes": MaxAttachmentBytes, "html": true}}
	to := r.Identity(switchboard.IdentityEmail)
	var total int64
	for _, a := range d.Attachments {
		total += a.Size
	}
	switch {
	case to == "":
		dec.Allowed, dec.Reason = false, "the customer has no e-mail address"
	case d.Template != nil:
		dec.Allowed, dec.Reason = false, "e-mail has no message templates"
	case strings.TrimSpace(d.Text) == "":
		dec.Allowed, dec.Reason = false, "an e-mail needs some text"
	case total > MaxAttachmentBytes:
		dec.Allowed, dec.Reason = false, fmt.Sprintf("the attachments come to %.1f MB; an e-mail takes at most 25 MB", float64(total)/(1<<20))
	default:
		dec.Details["to"] = to
	}
	return dec
}

// Send is the outbox's sender. The provider id it returns is the mail's
// Message-ID, which bounces and the customer's reply refer back to.
func (s *Sender) Send(ctx context.Context, m *switchboard.Outbound) (string, error) {
	to := ""
	for _, id := range m.To {
		if id.Kind == switchboard.IdentityEmail {
			to = id.Value
			break
		}
	}
	if to == "" {
		return "", switchboard.Permanent(switchboard.Errorf(switchboard.EPOLICY, "the customer has no e-mail address"))
	}
	var meta struct {
		Auto bool     `json:"auto"`
		Cc   []string `json:"cc"`
		Bcc  []string `json:"bcc"`
		// Unsubscribe is the one-click unsubscribe URL of bulk-like mail
		// (satisfaction surveys): List-Unsubscribe and, as RFC 8058
		// asks, List-Unsubscribe-Post.
		Unsubscribe string `json:"unsubscribe"`
	}
	if len(m.Metadata) > 0 {
		if err := json.Unmarshal(m.Metadata, &meta); err != nil {
			return "", switchboard.Permanent(fmt.Errorf("email: metadata: %w", err))
		}
	}
	if meta.Auto {
		ok, err := s.cfg.Threads.TryAutoMail(ctx, to, m.MessageID, AutoMailWindow)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", switchboard.Permanent(switchboard.Errorf(switchboard.EPOLICY, "not sent: %s had an automatic mail in the last 24 hours", to))
		}
	}
	thread, err := s.cfg.Threads.EmailThread(ctx, m.ConversationID)
	if err != nil {
		return "", fmt.Errorf("email: thread: %w", err)
	}
	mail := smtpout.Mail{
		From:       s.cfg.From,
		To:         []smtpout.Address{{Addr: to}},
		Cc:         addresses(meta.Cc),
		Bcc:        addresses(meta.Bcc),
		Subject:    replySubject(thread.Subject),
		MessageID:  s.MessageID(m.MessageID),
		InReplyTo:  validID(thread.InReplyTo),
		References: trimReferences(validIDs(thread.References)),
		Date:       s.cfg.Clock.Now(),
		Text:       m.Text,
		HTML:       m.HTML,
		Auto:       meta.Auto,
	}
	if mail.HTML == "" {
		mail.HTML = textToHTML(m.Text)
	}
	if u := meta.Unsubscribe; strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		mail.Headers = map[string]string{"List-Unsubscribe": "<" + u + ">", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
	}
	if s.cfg.Tokens != nil {
		mail.ReplyTo = []smtpout.Address{{Name: s.cfg.From.Name, Addr: s.cfg.Tokens.Address(m.ConversationID)}}
	}
	for _, a := range m.Attachments {
		data, err := s.read(ctx, a.Key)
		if err != nil {
			return "", err
		}
		mail.Attachments = append(mail.Attachments, smtpout.Attachment{Name: a.Name, ContentType: a.ContentType, Data: data})
	}
	if _, err := s.cfg.Mailer.Send(ctx, mail); err != nil {
		return "", err
	}
	return mail.MessageID, nil
}

func (s *Sender) read(ctx context.Context, key string) ([]byte, error) {
	if s.cfg.Blobs == nil {
		return nil, switchboard.Permanent(fmt.Errorf("email: attachment %s: no object store", key))
	}
	rc, _, err := s.cfg.Blobs.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("email: attachment %s: %w", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxAttachmentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("email: attachment %s: %w", key, err)
	}
	return data, nil
}

// validID and validIDs keep the thread ids a header can carry: the
// customer's mail system chose them, and one it got wrong must not make
// every reply in the conversation fail.
func validID(id string) string {
	if smtpout.ValidMessageID(id) {
		return id
	}
	return ""
}

func validIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if smtpout.ValidMessageID(id) {
			out = append(out, id)
		}
	}
	return out
}

// replySubject is "Re: " and the customer's subject, once, without the
// control characters a sender may have put in it.
func replySubject(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" {
		return "Re: your message"
	}
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	return "Re: " + s
}

// trimReferences keeps the first and the latest ids of a long thread, as
// RFC 5322 §3.6.4 suggests, so the header stays a sensible length.
func trimReferences(refs []string) []string {
	const keep = 10
	if len(refs) <= keep {
		return refs
	}
	return append([]string{refs[0]}, refs[len(refs)-keep+1:]...)
}

// textToHTML gives a plain reply an HTML alternative with its paragraphs
// and line breaks.
func textToHTML(text string) string {
	var b strings.Builder
	for _, p := range strings.Split(strings.ReplaceAll(strings.TrimSpace(text), "\r\n", "\n"), "\n\n") {
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(p), "\n", "<br>\n"))
		b.WriteString("</p>\n")
	}
	return b.String()
}

func addresses(as []string) []smtpout.Address {
	var out []smtpout.Address
	for _, a := range as {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, smtpout.Address{Addr: a})
		}
	}
	return out
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}
