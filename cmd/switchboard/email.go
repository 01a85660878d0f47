package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email"
	"github.com/switchboard-inbox/switchboard/channel/email/imap"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/server"
)

// wireEmail turns on the e-mail channel for what is configured: replies
// over SMTP (also for web-form customers), POST /webhooks/email, and IMAP
// mailboxes.
func (m *Main) wireEmail(srv *server.Server, signingKey []byte) error {
	c := m.Config
	var tokens *email.Tokens
	var from smtpout.Address
	if c.EmailFrom != "" {
		a, err := mail.ParseAddress(c.EmailFrom)
		if err != nil {
			return fmt.Errorf("config: SWITCHBOARD_EMAIL_FROM: %w", err)
		}
		from = smtpout.Address{Name: a.Name, Addr: strings.ToLower(a.Address)}
		local, domain, _ := strings.Cut(from.Addr, "@")
		// The reply-token key is derived from the signing key every
		// instance already shares, so no new secret has to be configured.
		k := hmac.New(sha256.New, signingKey)
		k.Write([]byte("switchboard e-mail reply tokens"))
		tokens = &email.Tokens{Key: k.Sum(nil), Local: local, Domain: domain}
	}
	ch := email.New(email.Config{
		Queue: m.Queue, Blobs: m.Blobs, Store: m.DB, Tokens: tokens, Logger: m.Logger,
		OnBounce: func(messageID, conversationID string) {
			m.publish(switchboard.BusConversationUpdated, conversationID, map[string]string{"message_id": messageID, "status": switchboard.DeliveryFailed})
		},
	})
	if c.InboundEmailSecret != "" {
		srv.Webhooks["POST /webhooks/email"] = ch.Handler(email.HandlerConfig{
			Secret: c.InboundEmailSecret, Logger: m.Logger,
			OnAccepted: func() { m.Metrics.Accepted.Add(string(switchboard.ChannelEmail), 1) },
			OnRejected: func(code refusal.Code) { m.Metrics.Rejected.Add(string(switchboard.ChannelEmail), string(code), 1) },
		})
	}
	if c.IMAPURLs != "" {
		var boxes []imap.Mailbox
		for _, u := range strings.Split(c.IMAPURLs, ",") {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			b, err := imap.ParseURL(u)
			if err != nil {
				return fmt.Errorf("config: SWITCHBOARD_IMAP_URLS: %w", err)
			}
			boxes = append(boxes, b)
		}
		f := &imap.Fetcher{
			Mailboxes: boxes, State: mailboxState{m}, Logger: m.Logger, Poll: c.IMAPPoll,
			Deliver: func(ctx context.Context, msg imap.Message) error {
				return m.acceptMail(ctx, ch, msg)
			},
		}
		m.background = append(m.background, func(ctx context.Context) {
			if err := f.Run(ctx); err != nil && ctx.Err() == nil {
				m.Logger.Error("imap: stopped", "err", err)
			}
		})
	}
	if c.SMTPURL != "" {
		cfg := smtpout.Config{URL: c.SMTPURL, Timeout: time.Minute}
		if c.DKIMSelector != "" {
			d, err := smtpout.LoadDKIM(from.Addr[strings.LastIndexByte(from.Addr, '@')+1:], c.DKIMSelector, c.DKIMKeyFile)
			if err != nil {
				return fmt.Errorf("config: DKIM: %w", err)
			}
			cfg.DKIM = d
		}
		client, err := smtpout.New(cfg)
		if err != nil {
			return fmt.Errorf("config: SWITCHBOARD_SMTP_URL: %w", err)
		}
		s := email.NewSender(email.SenderConfig{Mailer: client, From: from, Tokens: tokens, Threads: m.DB, Blobs: m.Blobs})
		for _, c := range []switchboard.Channel{switchboard.ChannelEmail, switchboard.ChannelWebform} {
			m.Senders[c] = s
			srv.Policies[c] = s
		}
	}
	return nil
}

// acceptMail hands one fetched mail to the channel. Mail that can never be
// read is kept as a dead letter and reported done, so that the mailbox
// moves on instead of fetching it forever.
// Mail that keeps failing for another reason (a bug, a limit of the
// database it trips) is set aside once it has failed for over an hour, so
// that one mail cannot hold up its mailbox for good, while an outage of the
// queue or the object store shorter than that loses nothing to the dead
// letters.
func (m *Main) acceptMail(ctx context.Context, ch *email.Channel, msg imap.Message) error {
	_, err := ch.Accept(ctx, msg.Raw, "imap:"+msg.Mailbox)
	if err == nil {
		m.mailFailures.forget(msg)
		m.Metrics.Accepted.Add(string(switchboard.ChannelEmail), 1)
		return nil
	}
	if ctx.Err() != nil {
		return err // shutting down
	}
	if switchboard.ErrorCode(err) != switchboard.EINVALID && m.mailFailures.failingFor(msg) < maxMailFailing {
		return err // the fetcher retries it after a backoff
	}
	m.mailFailures.forget(msg)
	m.Logger.Warn("imap: mail kept as a dead letter", "mailbox", msg.Mailbox, "uid", msg.UID, "err", err)
	return m.DB.DeadLetter(ctx, switchboard.ChannelEmail, msg.Raw, err.Error())
}

const maxMailFailing = time.Hour

// mailFailures remembers since when each fetched mail has been failing.
type mailFailures struct {
	mu    sync.Mutex
	since map[string]time.Time
}

func mailKey(msg imap.Message) string {
	return fmt.Sprintf("%s/%d/%d", msg.Mailbox, msg.UIDValidity, msg.UID)
}

// failingFor records a failure and says how long the mail has failed.
func (f *mailFailures) failingFor(msg imap.Message) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since == nil {
		f.since = map[string]time.Time{}
	}
	first, ok := f.since[mailKey(msg)]
	if !ok {
		f.since[mailKey(msg)] = time.Now()
		return 0
	}
	return time.Since(first)
}

func (f *mailFailures) forget(msg imap.Message) {
	f.mu.Lock()
	delete(f.since, mailKey(msg))
	f.mu.Unlock()
}

// mailboxState keeps IMAP positions in the store.
type mailboxState struct{ m *Main }

func (s mailboxState) Load(ctx context.Context, mailbox string) (uint32, uint32, error) {
	return s.m.DB.MailboxState(ctx, mailbox)
}

func (s mailboxState) Save(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error {
	return s.m.DB.SaveMailboxState(ctx, mailbox, uidValidity, lastUID)
}
