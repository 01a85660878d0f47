package connect

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// Channel states.
const (
	Connected    = "connected"
	Degraded     = "degraded"
	Disconnected = "disconnected"
)

// tokenWarning is how long before a token expires its channel shows a
// warning: time to connect again before messages start failing.
const tokenWarning = 7 * 24 * time.Hour

// defaultTokenCheckEvery bounds how often a token is checked with the
// provider.
const defaultTokenCheckEvery = 5 * time.Minute

// Health is a provider connection's state.
type Health struct {
	Group    string                `json:"group"` // inbox.GroupTwilio, GroupMeta, GroupEmail
	Name     string                `json:"name"`
	Channels []switchboard.Channel `json:"channels"`
	State    string                `json:"state"` // Connected, Degraded or Disconnected
	Reasons  []string              `json:"reasons,omitempty"`
	// TokenExpires is when the token replies are sent with expires, when
	// the provider says.
	TokenExpires *time.Time `json:"token_expires,omitempty"`
	// LastWebhook and LastSendError are what this instance saw.
	LastWebhook   *time.Time `json:"last_webhook,omitempty"`
	LastSendError string     `json:"last_send_error,omitempty"`
	LastSendAt    *time.Time `json:"last_send_error_at,omitempty"`
}

type tokenCache struct {
	mu      sync.Mutex
	token   string
	checked time.Time
	info    meta.TokenInfo
	err     error
}

// Health reports every provider connection's state (admins).
func (s *Service) Health(ctx context.Context, actor switchboard.Actor) ([]Health, error) {
	if err := require(actor, "see the channels' health"); err != nil {
		return nil, err
	}
	c := s.Current()
	out := []Health{
		s.health(c, inbox.GroupTwilio, "Twilio", c.TwilioAccountSID != "", []switchboard.Channel{switchboard.ChannelSMS, switchboard.ChannelVoice}),
		s.health(c, inbox.GroupMeta, "Meta", c.MetaAppSecret != "", []switchboard.Channel{switchboard.ChannelWhatsApp, switchboard.ChannelMessenger, switchboard.ChannelInstagram}),
		s.health(c, inbox.GroupEmail, "E-mail", c.SMTPURL != "" || c.IMAPURLs != "" || c.InboundEmailSecret != "", []switchboard.Channel{switchboard.ChannelEmail}),
	}
	meta := &out[1]
	if meta.State != Disconnected {
		if c.MessengerPageID != "" && c.MessengerPageToken == "" && c.MetaAccessToken == "" {
			meta.add(Degraded, "Messenger and Instagram replies need a Page token: connect Facebook")
		}
		if c.MessengerPageToken != "" {
			s.checkPageToken(ctx, c, meta)
		}
	}
	return out, nil
}

func (h *Health) add(state, reason string) {
	if h.State != Disconnected {
		h.State = state
	}
	h.Reasons = append(h.Reasons, reason)
}

func (s *Service) health(c Settings, group, name string, on bool, chans []switchboard.Channel) Health {
	h := Health{Group: group, Name: name, Channels: chans, State: Connected}
	if !on {
		h.State = Disconnected
		h.Reasons = append(h.Reasons, "not configured")
	}
	for _, p := range c.Problems[group] {
		h.add(Degraded, p)
		if !on {
			h.State = Disconnected
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.seen[group]; ok {
		h.LastWebhook = &t
	}
	for _, ch := range chans {
		if f, ok := s.failures[string(ch)]; ok && (h.LastSendAt == nil || f.At.After(*h.LastSendAt)) {
			h.LastSendAt, h.LastSendError = &f.At, fmt.Sprintf("%s: %s", ch, f.Err)
		}
	}
	return h
}

// checkPageToken asks Meta about the Page token (at most every few
// minutes) and marks the connection degraded when it is invalid or
// expires soon.
func (s *Service) checkPageToken(ctx context.Context, c Settings, h *Health) {
	if c.MetaAppID == "" {
		h.add(Degraded, "set the Meta app ID so the Page token can be checked")
		return
	}
	tc := &s.tokens
	tc.mu.Lock()
	defer tc.mu.Unlock()
	every := s.TokenCheckEvery
	if every <= 0 {
		every = defaultTokenCheckEvery
	}
	if tc.token != c.MessengerPageToken || s.now().Sub(tc.checked) >= every {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		tc.info, tc.err = s.oauth(c, "").DebugToken(ctx, c.MessengerPageToken)
		tc.token, tc.checked = c.MessengerPageToken, s.now()
	}
	switch {
	case tc.err != nil:
		h.add(Degraded, "the Page token could not be checked: "+tc.err.Error())
	case !tc.info.Valid:
		reason := "the Page token was rejected by Meta"
		if tc.info.Error != "" {
			reason += ": " + tc.info.Error
		}
		h.add(Degraded, reason+"; connect Facebook again")
	case !tc.info.ExpiresAt.IsZero():
		t := tc.info.ExpiresAt
		h.TokenExpires = &t
		if t.Sub(s.now()) < tokenWarning {
			h.add(Degraded, fmt.Sprintf("the Page token expires %s: connect Facebook again", t.Format("2 Jan 2006 15:04 MST")))
		}
	}
}
