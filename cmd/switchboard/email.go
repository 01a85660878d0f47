package main

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
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
		tokens = email.NewTokens(signingKey, from.Addr)
	}
	ch := email.New(email.Config{Queue: m.Queue, Blobs: m.Blobs, Store: m.Inbox, Tokens: tokens, DeadLetters: m.Inbox, Logger: m.Logger})
	if c.InboundEmailSecret != "" {
		srv.Webhooks["POST /webhooks/email"] = ch.Handler(email.HandlerConfig{
			Secret: c.InboundEmailSecret, Logger: m.Logger, Clock: m.Clock,
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
		d := &email.IMAPDelivery{
			Channel: ch, DeadLetters: m.Inbox, Clock: m.Clock,
			OnAccepted: func() { m.Metrics.Accepted.Add(string(switchboard.ChannelEmail), 1) },
		}
		f := &imap.Fetcher{Mailboxes: boxes, State: email.MailboxStates{Inbox: m.Inbox}, Logger: m.Logger, Poll: c.IMAPPoll, Deliver: d.Deliver}
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
		s := email.NewSender(email.SenderConfig{Mailer: client, From: from, Tokens: tokens, Threads: m.Inbox, Blobs: m.Blobs})
		for _, c := range []switchboard.Channel{switchboard.ChannelEmail, switchboard.ChannelWebform} {
			m.Inbox.SetChannel(c, s, s)
		}
	}
	return nil
}
