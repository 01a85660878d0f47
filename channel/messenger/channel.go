package messenger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Channel sends agents' replies on Messenger or Instagram and enforces the
// messaging windows: a standard reply within 24 hours of the customer's
// last message, the HUMAN_AGENT tag up to 7 days, nothing after.
type Channel struct {
	Client      *Client
	LastInbound func(ctx context.Context, conversationID string) (time.Time, error)
	// Clock is the time the windows are checked at when sending (default:
	// the system clock); the policy is given the time by its caller.
	Clock switchboard.Clock
}

func (c *Channel) now() time.Time {
	if c.Clock == nil {
		return time.Now().UTC()
	}
	return c.Clock.Now()
}

func (c *Channel) kind() (switchboard.Channel, switchboard.IdentityKind) {
	if c.Client.Channel == switchboard.ChannelInstagram {
		return switchboard.ChannelInstagram, switchboard.IdentityInstagramID
	}
	return switchboard.ChannelMessenger, switchboard.IdentityMessengerPSID
}

// Check is the policy. Replies here are public-facing social messages:
// Details carries "public" so the composer can warn the agent.
func (c *Channel) Check(r switchboard.Recipient, d switchboard.Draft, now time.Time) switchboard.Decision {
	ch, kind := c.kind()
	dec := switchboard.Decision{Channel: ch, Allowed: true, Details: map[string]any{"public": true}}
	last := r.LastInbound[ch]
	mode, reason := SendMode(last, now)
	if mode != "" {
		dec.Details["messaging_type"] = mode
		ends := last.Add(ResponseWindow)
		if mode == ModeHumanAgent {
			ends = last.Add(HumanAgentWindow)
		}
		dec.WindowEndsAt = &ends
	}
	switch {
	case r.Identity(kind) == "":
		dec.Allowed, dec.Reason = false, fmt.Sprintf("the customer has no %s identity", ch)
	case d.Template != nil:
		dec.Allowed, dec.Reason = false, fmt.Sprintf("%s has no message templates", ch)
	case len(d.Attachments) > 0:
		dec.Allowed, dec.Reason = false, fmt.Sprintf("attachments cannot be sent on %s yet; send a link instead", ch)
	case mode == "":
		dec.Allowed, dec.Reason = false, reason
	default:
		if err := CheckText(ch, d.Text); err != nil {
			dec.Allowed, dec.Reason = false, switchboard.ErrorMessage(err)
		}
	}
	return dec
}

// Send is the outbox's sender.
func (c *Channel) Send(ctx context.Context, m *switchboard.Outbound) (string, error) {
	_, kind := c.kind()
	to := ""
	for _, id := range m.To {
		if id.Kind == kind {
			to = id.Value
			break
		}
	}
	if to == "" {
		return "", switchboard.Permanent(errors.New("the customer has no identity on this channel"))
	}
	var last time.Time
	if c.LastInbound != nil {
		var err error
		if last, err = c.LastInbound(ctx, m.ConversationID); err != nil {
			return "", fmt.Errorf("messenger: window: %w", err)
		}
	}
	mode, reason := SendMode(last, c.now())
	if mode == "" {
		return "", switchboard.Permanent(errors.New(reason))
	}
	return c.Client.Send(ctx, to, m.Text, TagFor(mode))
}
