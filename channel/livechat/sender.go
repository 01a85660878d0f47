package livechat

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// Recipients is what the sender reads and does (package inbox).
type Recipients interface {
	ChatRecipient(ctx context.Context, visitors []string) (lastSeen time.Time, email string, err error)
	DeliverToVisitors(ctx context.Context, messageID string, visitors []string) error
}

// How an agent's reply reaches the visitor, as the policy says it in
// Decision.Details["delivery"].
const (
	DeliveryLive      = "live"       // to the visitor's sockets at once (any instance)
	DeliveryEmail     = "email"      // by e-mail: the visitor left and typed an address
	DeliveryNextVisit = "next_visit" // kept: sent when the visitor comes back
)

// DefaultEmailAfter is how long a visitor must have been gone before
// replies go by e-mail.
const DefaultEmailAfter = 10 * time.Minute

// Channel is the live-chat channel's policy and sender. A visitor
// connected, or gone less than EmailAfter, gets the reply live (and on
// their next visit if they are not back yet); one gone longer who typed
// an e-mail address gets it by e-mail through Email, when e-mail is
// configured; anyone else on their next visit.
type Channel struct {
	Inbox Recipients
	// Email gives what sends the e-mail fallback now (an admin may set
	// e-mail up while Switchboard runs); nil, or nil from it: there is
	// none.
	Email      func() switchboard.Sender
	EmailAfter time.Duration // default DefaultEmailAfter
	Clock      switchboard.Clock
}

func visitorsOf(ids []switchboard.IdentityRef) []string {
	var out []string
	for _, id := range ids {
		if id.Kind == switchboard.IdentityChatVisitor {
			out = append(out, id.Value)
		}
	}
	return out
}

func (c *Channel) email() switchboard.Sender {
	if c.Email == nil {
		return nil
	}
	return c.Email()
}

// route decides how a reply to the visitors reaches them now.
func (c *Channel) route(ctx context.Context, visitors []string, now time.Time) (delivery, email string, err error) {
	seen, email, err := c.Inbox.ChatRecipient(ctx, visitors)
	if err != nil {
		return "", "", err
	}
	after := c.EmailAfter
	if after <= 0 {
		after = DefaultEmailAfter
	}
	switch {
	case now.Sub(seen) < after:
		return DeliveryLive, "", nil
	case email != "" && c.email() != nil:
		return DeliveryEmail, email, nil
	}
	return DeliveryNextVisit, "", nil
}

// Check is the channel's policy: a reply needs a visitor to go to, and
// text or files; the decision says how it will travel (details
// "delivery": live, email or next_visit, and "email"), so the composer
// can say so.
func (c *Channel) Check(r switchboard.Recipient, d switchboard.Draft, now time.Time) switchboard.Decision {
	dec := switchboard.Decision{Channel: d.Channel, Allowed: true, Details: map[string]any{"max_attachment_bytes": inbox.MaxUploadBytes}}
	visitors := visitorsOf(r.Identities)
	switch {
	case len(visitors) == 0:
		dec.Allowed, dec.Reason = false, "the customer has never written by live chat"
		return dec
	case d.Template != nil:
		dec.Allowed, dec.Reason = false, "live chat has no message templates"
		return dec
	case strings.TrimSpace(d.Text) == "" && len(d.Attachments) == 0:
		dec.Allowed, dec.Reason = false, "a message needs text or files"
		return dec
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	delivery, email, err := c.route(ctx, visitors, now)
	if err != nil {
		dec.Allowed, dec.Reason = false, "the visitor could not be looked up; try again"
		return dec
	}
	dec.Details["delivery"] = delivery
	if email != "" {
		dec.Details["email"] = email
	}
	return dec
}

// Send delivers a reply: live, through the bus, to the visitor's sockets
// on every instance (which mark it delivered once written; provider id
// "lc:<message id>"), by e-mail ("email:<Message-ID>": the reply shows it
// went by e-mail), or kept for the visitor's next visit ("lc:" too, sent
// and delivered when they connect).
func (c *Channel) Send(ctx context.Context, m *switchboard.Outbound) (string, error) {
	visitors := visitorsOf(m.To)
	if len(visitors) == 0 {
		return "", switchboard.Permanent(switchboard.Errorf(switchboard.EPOLICY, "the customer has never written by live chat"))
	}
	clock := c.Clock
	if clock == nil {
		clock = switchboard.SystemClock{}
	}
	delivery, email, err := c.route(ctx, visitors, clock.Now())
	if err != nil {
		return "", err
	}
	switch delivery {
	case DeliveryEmail:
		mail := *m
		mail.To = []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: email}}
		snd := c.email()
		if snd == nil {
			return "", fmt.Errorf("livechat: e-mail fallback: e-mail is no longer configured")
		}
		pid, err := snd.Send(ctx, &mail)
		if err != nil {
			return "", fmt.Errorf("livechat: e-mail fallback: %w", err)
		}
		return "email:" + pid, nil
	case DeliveryLive:
		if err := c.Inbox.DeliverToVisitors(ctx, m.MessageID, visitors); err != nil {
			return "", fmt.Errorf("livechat: deliver: %w", err)
		}
	}
	return inbox.ChatProviderID(m.MessageID), nil
}
