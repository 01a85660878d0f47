// Package email is the e-mail channel: inbound mail from IMAP mailboxes
// (package channel/email/imap) and from inbound-mail services posting raw
// MIME to POST /webhooks/email, both read by one parser
// (channel/email/parse); outbound replies over SMTP with DKIM
// (channel/email/smtpout), threaded so the customer's mail client keeps
// one thread and their reply finds its conversation again.
//
// Mail from robots never becomes a customer message: a bounce marks the
// message it reports on as failed, and an auto-reply (RFC 3834) is noted
// on its conversation without reopening it or earning an acknowledgement.
package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/parse"
	"github.com/switchboard-inbox/switchboard/channel/enqueue"
	"github.com/switchboard-inbox/switchboard/identity"
)

// Store is where mail from robots is recorded.
type Store interface {
	RecordAutoReply(ctx context.Context, a switchboard.AutoReply) (conversationID string, isNew bool, err error)
	RecordBounce(ctx context.Context, b switchboard.Bounce) (messageID, conversationID string, err error)
}

// InlineOriginalBytes is the largest raw mail kept in the database as the
// message's original; a larger one is kept in the object store.
const InlineOriginalBytes = 256 << 10

// Config wires the inbound side of the channel.
type Config struct {
	Queue  switchboard.Queue
	Blobs  switchboard.BlobStore
	Store  Store
	Tokens *Tokens // reply addresses; nil: threading by headers only
	// DeadLetters keeps a mail that names no sender address anywhere, so
	// that it is durable without a customer to give it to; nil: such a
	// mail is an EINVALID error.
	DeadLetters DeadLetters
	Logger      *slog.Logger
}

// Outcome says what became of one accepted mail.
type Outcome string

// Outcomes of Accept.
const (
	Queued    Outcome = "queued"     // a customer message, on the inbound queue
	Bounced   Outcome = "bounce"     // a delivery report, applied
	AutoReply Outcome = "auto_reply" // mail from a robot, noted
	// DeadLetter: a mail with no sender address at all, kept whole for
	// an operator (Config.DeadLetters).
	DeadLetter Outcome = "dead_letter"
)

// Channel accepts raw inbound mail.
type Channel struct{ cfg Config }

// New returns the inbound e-mail channel.
func New(cfg Config) *Channel {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Channel{cfg: cfg}
}

// Accept reads one raw message and makes it durable: a customer message
// is queued (its attachments stored first), a bounce or an auto-reply is
// recorded. It returns only once that is done, so the IMAP fetcher and
// the webhook may acknowledge the mail when it returns nil. A malformed
// mail is not refused: it is queued with what could be recovered and its
// raw bytes, marked in its metadata ("malformed"); one that names no
// sender address at all is kept as a dead letter. Only an empty mail is
// an EINVALID error. source ("imap:box", "http") is kept with the
// message.
func (c *Channel) Accept(ctx context.Context, raw []byte, source string) (Outcome, error) {
	return c.AcceptFrom(ctx, raw, source, "")
}

// AcceptFrom is Accept with the envelope sender the delivering service
// reported beside the mail (Mailgun's sender, SendGrid's envelope), the
// last resort for a mail whose headers name no usable sender.
func (c *Channel) AcceptFrom(ctx context.Context, raw []byte, source, envelopeFrom string) (Outcome, error) {
	e, err := parse.Parse(raw)
	if err != nil {
		return "", switchboard.Errorf(switchboard.EINVALID, "empty e-mail: %v", err)
	}
	rawSum := sha256.Sum256(raw)
	id := e.MessageID
	if !validMessageID(id) {
		// Without a usable Message-ID the content itself is the identity,
		// so the same mail fetched again or posted too is stored once. An
		// id too long to index (anyone can send one) counts as unusable.
		id = "sha256:" + hex.EncodeToString(rawSum[:16])
	}
	// Files are kept under the raw mail's digest, not its Message-ID: a
	// second mail claiming the same id must not replace the first's files.
	dir := "media/email/" + hex.EncodeToString(rawSum[:12])
	hint, _ := c.cfg.Tokens.Find(recipients(e)...)
	refs := references(e)
	switch {
	case e.Bounce != nil:
		return Bounced, c.bounce(ctx, id, e, refs)
	case e.Auto != "":
		conv, isNew, err := c.cfg.Store.RecordAutoReply(ctx, switchboard.AutoReply{
			MessageID: id, ConversationHint: hint, InReplyTo: refs,
			From:    switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: e.From.Addr},
			Subject: e.Subject, Reason: e.Auto,
		})
		if err != nil {
			return "", fmt.Errorf("email: auto-reply: %w", err)
		}
		c.cfg.Logger.Info("email: automatic mail noted", "from", e.From.Addr, "reason", e.Auto, "conversation", conv, "new", isNew)
		return AutoReply, nil
	}
	from, err := senderOf(e, envelopeFrom)
	if err != nil {
		return c.deadLetter(ctx, raw, source, e, err)
	}
	in := switchboard.Inbound{
		Channel:          switchboard.ChannelEmail,
		ProviderID:       id,
		SenderName:       from.Name,
		Identities:       []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: from.Addr}},
		ContentType:      switchboard.ContentText,
		Subject:          e.Subject,
		Text:             e.Reply,
		HTML:             e.HTML,
		Original:         raw,
		ConversationHint: hint,
		InReplyTo:        refs,
		// The Date the sender's system gave, so that a backlog fetched
		// after downtime keeps its order; the store refuses future times,
		// and a date older than a day is not believed either.
		ReceivedAt: sentAt(e.Date),
	}
	if in.Attachments, err = c.storeAttachments(ctx, dir, e.Attachments); err != nil {
		return "", err
	}
	var originalKey string
	if len(raw) > InlineOriginalBytes && c.cfg.Blobs != nil {
		// A large mail is kept whole in the object store, so the queue
		// entry and the database row do not carry its attachments again.
		originalKey = dir + "/original.eml"
		if err := c.cfg.Blobs.Put(ctx, originalKey, bytes.NewReader(raw), int64(len(raw)), "message/rfc822"); err != nil {
			return "", fmt.Errorf("email: store original: %w", err)
		}
		in.Original = nil
	}
	if strings.TrimSpace(in.Text) == "" && len(in.Attachments) > 0 {
		in.ContentType = contentType(in.Attachments[0].ContentType)
	}
	meta := map[string]any{"message_id": e.MessageID, "source": source}
	if originalKey != "" {
		meta[switchboard.MetaOriginalKey] = originalKey
	}
	if len(e.References) > 0 {
		meta["references"] = e.References
	}
	if len(e.To) > 0 {
		meta["to"] = addrs(e.To)
	}
	if len(e.Cc) > 0 {
		meta["cc"] = addrs(e.Cc)
	}
	if len(e.Dropped) > 0 {
		meta["dropped"] = e.Dropped
	}
	if e.Malformed != "" {
		// The agent is shown what could be recovered; this says the
		// original (GET .../original) is the faithful copy.
		meta["malformed"] = e.Malformed
	}
	if from.Source != "from" {
		meta["sender_source"] = from.Source
	}
	if in.Metadata, err = json.Marshal(meta); err != nil {
		return "", fmt.Errorf("email: metadata: %w", err)
	}
	if err := enqueue.Inbound(ctx, c.cfg.Queue, switchboard.ChannelEmail, &in); err != nil {
		return "", fmt.Errorf("email: enqueue: %w", err)
	}
	return Queued, nil
}

// sender is the customer's address for a mail, and the field it came from.
type sender struct {
	Name, Addr string
	Source     string // from, reply_to, return_path or envelope
}

// senderOf picks the address a customer message is filed and answered
// under: From (or Sender), else Reply-To, else the envelope sender (the
// Return-Path our MTA wrote, or the one the service reported). Reply-To
// comes before the envelope because bulk senders' envelopes are bounce
// addresses, not the person. Only an address identity accepts counts.
func senderOf(e *parse.Email, envelopeFrom string) (sender, error) {
	cands := []sender{{e.From.Name, e.From.Addr, "from"}}
	for _, a := range e.ReplyTo {
		cands = append(cands, sender{a.Name, a.Addr, "reply_to"})
	}
	cands = append(cands, sender{"", e.ReturnPath, "return_path"}, sender{"", envelopeFrom, "envelope"})
	for _, s := range cands {
		if s.Addr == "" {
			continue
		}
		if addr, err := identity.Email(s.Addr); err == nil {
			s.Addr = addr
			return s, nil
		}
	}
	if e.From.Addr != "" {
		return sender{}, fmt.Errorf("the sender address %q is not usable", e.From.Addr)
	}
	return sender{}, errors.New("no sender address")
}

// deadLetter keeps a mail that names no usable sender. Without an address
// there is no customer to file it under or answer, and an invented one
// would make a customer nobody can reach; kept whole as a dead letter, it
// is durable (the service may stop retrying) and an operator sees it.
func (c *Channel) deadLetter(ctx context.Context, raw []byte, source string, e *parse.Email, cause error) (Outcome, error) {
	if c.cfg.DeadLetters == nil {
		return "", switchboard.Errorf(switchboard.EINVALID, "e-mail without a usable sender: %v", cause)
	}
	why := "email: " + cause.Error()
	if e.Malformed != "" {
		why += " (malformed: " + e.Malformed + ")"
	}
	if err := c.cfg.DeadLetters.DeadLetter(ctx, switchboard.ChannelEmail, raw, why); err != nil {
		return "", fmt.Errorf("email: dead letter: %w", err)
	}
	c.cfg.Logger.Warn("email: mail without a sender kept as a dead letter", "source", source, "message_id", e.MessageID, "cause", why)
	return DeadLetter, nil
}

func (c *Channel) bounce(ctx context.Context, id string, e *parse.Email, refs []string) error {
	b := switchboard.Bounce{MessageID: id, Original: e.Bounce.OriginalMessageID}
	if b.Original == "" && len(refs) > 0 {
		b.Original = refs[0] // some MTAs only thread the report to the mail
	}
	var diags []string
	for _, r := range e.Bounce.Recipients {
		// Only recipients that failed for good count: a report where a Cc
		// failed and the customer is merely delayed must not fail the reply.
		if r.Permanent() {
			b.Permanent = true
			if r.FinalRecipient != "" {
				b.Recipients = append(b.Recipients, strings.ToLower(r.FinalRecipient))
			}
		}
		diags = append(diags, strings.TrimSpace(strings.Join(nonEmpty(r.Status, r.FinalRecipient, r.Diagnostic), " ")))
	}
	b.Diagnostic = strings.Join(diags, "; ")
	if b.Diagnostic == "" {
		b.Diagnostic = "bounced: " + e.Subject
	}
	msg, _, err := c.cfg.Store.RecordBounce(ctx, b)
	if err != nil {
		return fmt.Errorf("email: bounce: %w", err)
	}
	c.cfg.Logger.Info("email: bounce", "original", b.Original, "permanent", b.Permanent, "message", msg)
	return nil
}

// storeAttachments puts a message's files in the object store.
func (c *Channel) storeAttachments(ctx context.Context, dir string, atts []parse.Attachment) ([]switchboard.Attachment, error) {
	if len(atts) == 0 {
		return nil, nil
	}
	if c.cfg.Blobs == nil {
		return nil, errors.New("email: attachments arrived but no object store is configured")
	}
	out := make([]switchboard.Attachment, 0, len(atts))
	for i, a := range atts {
		// The name stays in the database; the key holds only a short,
		// safe extension, so no file name can make the key unusable.
		key := fmt.Sprintf("%s/%d%s", dir, i, safeExt(a.Name))
		if err := c.cfg.Blobs.Put(ctx, key, strings.NewReader(string(a.Data)), int64(len(a.Data)), a.ContentType); err != nil {
			return nil, fmt.Errorf("email: store attachment %d: %w", i, err)
		}
		out = append(out, switchboard.Attachment{Key: key, ContentType: a.ContentType, Size: int64(len(a.Data)), Name: a.Name, ContentID: a.ContentID})
	}
	return out, nil
}

func sentAt(date time.Time) time.Time {
	if date.IsZero() || time.Since(date) > 24*time.Hour {
		return time.Time{}
	}
	return date.UTC()
}

// safeExt is a file name's extension when it is short and plain.
func safeExt(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if len(ext) < 2 || len(ext) > 10 {
		return ""
	}
	for _, r := range ext[1:] {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return ""
		}
	}
	return ext
}

// validMessageID reports whether id (without <>) is one we can store and
// look up: printable ASCII, no spaces or angle brackets, and short enough
// for an index. RFC 5322 ids are far shorter in practice.
func validMessageID(id string) bool {
	if id == "" || len(id) > 250 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// recipients are the addresses a reply token may hide in.
func recipients(e *parse.Email) []string {
	var out []string
	for _, a := range slices.Concat(e.To, e.Cc) {
		out = append(out, a.Addr)
	}
	return append(out, e.DeliveredTo...)
}

// references lists the ids a reply refers to, nearest first: In-Reply-To,
// then References from the newest.
func references(e *parse.Email) []string {
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		if validMessageID(id) && !seen[id] && len(out) < 50 {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, id := range e.InReplyTo {
		add(id)
	}
	for i := len(e.References) - 1; i >= 0; i-- {
		add(e.References[i])
	}
	return out
}

func addrs(as []parse.Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Addr
	}
	return out
}

func contentType(mime string) string {
	switch {
	case strings.HasPrefix(mime, "image/"):
		return switchboard.ContentImage
	case strings.HasPrefix(mime, "audio/"):
		return switchboard.ContentAudio
	}
	return switchboard.ContentFile
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
