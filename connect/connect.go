// Package connect is where admins connect channels to their providers
// without hand-copied secrets: Twilio numbers pointed at this deployment
// through Twilio's API, Facebook and Instagram by Facebook Login, e-mail
// connections tested against the real servers, DKIM keys generated; and
// each channel's health. Like the inbox's own operations, each is
// implemented once here and checks the actor's role; what it stores goes
// through the inbox (settings, sealed secrets, the audit log).
package connect

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// Settings are the channel settings in use: the configuration with the
// stored settings laid under it.
type Settings struct {
	TwilioAccountSID, TwilioAuthToken, TwilioAPIURL  string
	TwilioFrom, TwilioMessagingSID                   string
	MetaAppID, MetaAppSecret, GraphAPIURL            string
	MetaAccessToken, WhatsAppPhoneNumberID           string
	MessengerPageID, MessengerPageToken              string
	InstagramAccountID, WhatsAppBusinessAccountID    string
	EmailFrom, SMTPURL, IMAPURLs, InboundEmailSecret string
	DKIMSelector, DKIMKey                            string
	// Problems are, per group of settings, why a provider is off or only
	// partly on.
	Problems map[string][]string
}

// Service is the channels' connections. Set its fields before use.
type Service struct {
	Inbox *inbox.Service
	// Current returns the settings in use now.
	Current func() Settings
	// PublicURL is where providers and browsers reach this deployment.
	PublicURL string
	HTTP      *http.Client // calls to providers
	Clock     switchboard.Clock
	Logger    *slog.Logger
	// DNSResolver, host:port, answers the e-mail domain checks (default:
	// the system's resolver).
	DNSResolver string
	// TokenCheckEvery bounds how often a token is checked with its
	// provider (default 5 minutes).
	TokenCheckEvery time.Duration

	mu       sync.Mutex
	seen     map[string]time.Time // group -> last accepted webhook, this instance
	failures map[string]failure   // channel -> last send error, this instance
	tokens   tokenCache
}

type failure struct {
	At  time.Time
	Err string
}

func (s *Service) now() time.Time {
	if s.Clock == nil {
		return time.Now().UTC()
	}
	return s.Clock.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// Seen notes that a webhook of the group's provider (inbox.GroupTwilio,
// GroupMeta, GroupEmail) was accepted now.
func (s *Service) Seen(group string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	s.seen[group] = s.now()
}

// SendFailed notes a send on ch that failed with err.
func (s *Service) SendFailed(ch switchboard.Channel, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures == nil {
		s.failures = map[string]failure{}
	}
	s.failures[string(ch)] = failure{At: s.now(), Err: err.Error()}
}

// Sender wraps snd so that its failures on ch show in the channel's
// health.
func (s *Service) Sender(ch switchboard.Channel, snd switchboard.Sender) switchboard.Sender {
	return recordingSender{s: s, ch: ch, Sender: snd}
}

type recordingSender struct {
	switchboard.Sender
	s  *Service
	ch switchboard.Channel
}

func (r recordingSender) Send(ctx context.Context, m *switchboard.Outbound) (string, error) {
	id, err := r.Sender.Send(ctx, m)
	if err != nil {
		r.s.SendFailed(r.ch, err)
	}
	return id, err
}

// audit records what an admin did; a failure to record is logged, not
// returned: the provider has already been changed.
func (s *Service) audit(ctx context.Context, actor switchboard.Actor, action, target, detail string) {
	if err := s.Inbox.Audit(ctx, actor, action, target, detail); err != nil {
		s.logger().Error("connect: audit", "action", action, "err", err)
	}
}

func require(actor switchboard.Actor, what string) error {
	if !actor.Role.AtLeast(switchboard.RoleAdmin) {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only admins %s", what)
	}
	return nil
}
