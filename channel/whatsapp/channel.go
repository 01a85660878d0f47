package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
)

// Channel sends agents' replies on WhatsApp and enforces the 24-hour
// customer-service window.
type Channel struct {
	Client *Client
	// LastInbound tells the sender when the customer last wrote on
	// WhatsApp; the window may have closed since the reply was queued.
	LastInbound func(ctx context.Context, conversationID string) (time.Time, error)
}

// Check is the WhatsApp policy: free-form text only within 24 hours of the
// customer's last WhatsApp message. Approved templates, which may be sent
// outside it, are not stored yet, so outside the window nothing can go.
func (c *Channel) Check(r switchboard.Recipient, d switchboard.Draft, now time.Time) switchboard.Decision {
	dec := switchboard.Decision{Channel: switchboard.ChannelWhatsApp, Allowed: true, Templates: []string{}}
	last := r.LastInbound[switchboard.ChannelWhatsApp]
	if !last.IsZero() {
		ends := WindowEnds(last)
		dec.WindowEndsAt = &ends
	}
	switch {
	case r.Identity(switchboard.IdentityPhone) == "":
		dec.Allowed, dec.Reason = false, "the customer has no WhatsApp number"
	case d.Template != nil:
		dec.Allowed, dec.Reason = false, "no approved WhatsApp templates are configured yet"
	case last.IsZero():
		dec.Allowed, dec.Reason = false, "the customer has never written on WhatsApp: only an approved template may start the conversation, and none is configured"
	case !CanSendFreeForm(last, now):
		dec.Allowed, dec.Reason = false, fmt.Sprintf("the 24-hour window closed at %s: WhatsApp accepts only approved templates until the customer writes again", dec.WindowEndsAt.UTC().Format(time.RFC3339))
	case utf8.RuneCountInString(d.Text) > MaxTextLen:
		dec.Allowed, dec.Reason = false, fmt.Sprintf("WhatsApp text is limited to %d characters", MaxTextLen)
	}
	return dec
}

// Send is the outbox's sender for WhatsApp.
func (c *Channel) Send(ctx context.Context, m *switchboard.Outbound) (string, error) {
	to := ""
	for _, id := range m.To {
		if id.Kind == switchboard.IdentityPhone {
			to = strings.TrimPrefix(id.Value, "+")
			break
		}
	}
	if to == "" {
		return "", switchboard.Permanent(errors.New("the customer has no WhatsApp number"))
	}
	if c.LastInbound != nil {
		last, err := c.LastInbound(ctx, m.ConversationID)
		if err != nil {
			return "", fmt.Errorf("whatsapp: window: %w", err)
		}
		if !CanSendFreeForm(last, time.Now()) {
			return "", switchboard.Permanent(fmt.Errorf("the 24-hour window closed at %s; nothing was sent", WindowEnds(last).UTC().Format(time.RFC3339)))
		}
	}
	return c.Client.SendText(ctx, to, m.Text)
}
