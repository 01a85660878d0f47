package messenger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// Channel sends agents' replies on Messenger or Instagram and enforces the
// messaging windows: a standard reply within 24 hours of the customer's
// last message, the HUMAN_AGENT tag up to 7 days, nothing after.
type Channel struct {
	Client *Client
	// Blobs holds the files replies attach; they are uploaded to Meta
	// rather than sent by URL, since Meta cannot reach a private
	// deployment's object store.
	Blobs       switchboard.BlobStore
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
// Details carries "public" so the composer can warn the agent. A message
// carries text or one attachment, so a reply is its text, then one
// message per file (Details "sends" and "parts"); the files' types and
// sizes are checked (AttachmentFor) and "attachment_limits" always says
// them.
func (c *Channel) Check(r switchboard.Recipient, d switchboard.Draft, now time.Time) switchboard.Decision {
	ch, kind := c.kind()
	dec := switchboard.Decision{Channel: ch, Allowed: true, Details: map[string]any{"public": true, "attachment_limits": AttachmentLimits(ch)}}
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
	case mode == "":
		dec.Allowed, dec.Reason = false, reason
	default:
		parts, err := plan(ch, d.Text, d.Attachments)
		if err != nil {
			dec.Allowed, dec.Reason = false, switchboard.ErrorMessage(err)
			break
		}
		if len(d.Attachments) > 0 {
			names := make([]string, len(parts))
			for i, p := range parts {
				names[i] = p.name()
			}
			dec.Details["sends"], dec.Details["parts"] = len(parts), names
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
	tag := TagFor(mode)
	if len(m.Attachments) == 0 {
		// Quick replies offered with the text (a survey's ratings).
		var meta struct {
			QuickReplies []string `json:"quick_replies"`
		}
		if len(m.Metadata) > 0 && json.Unmarshal(m.Metadata, &meta) == nil && len(meta.QuickReplies) > 0 {
			return c.Client.SendQuickReplies(ctx, to, m.Text, meta.QuickReplies, tag)
		}
		return c.Client.Send(ctx, to, m.Text, tag)
	}
	ch := c.Client.channel()
	parts, err := plan(ch, m.Text, m.Attachments)
	if err != nil {
		return "", switchboard.Permanent(fmt.Errorf("%s: %w", ch, err))
	}
	// Every file is uploaded before anything is sent: until then a
	// failure reaches no customer and the outbox may retry it all.
	ids := make([]string, len(parts))
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.name()
		if p.att != nil {
			if ids[i], err = c.upload(ctx, *p.att, p.out); err != nil {
				return "", err
			}
		}
	}
	// The client's errors name the channel already.
	return meta.SendParts(ctx, names, func(ctx context.Context, i int) (string, error) {
		if p := parts[i]; p.att != nil {
			return c.Client.SendAttachment(ctx, to, p.out.Type, ids[i], tag)
		}
		return c.Client.Send(ctx, to, parts[i].text, tag)
	})
}

// upload copies a stored attachment to Meta and returns its attachment id.
func (c *Channel) upload(ctx context.Context, a switchboard.Attachment, out OutAttachment) (string, error) {
	ch := c.Client.channel()
	rc, size, err := meta.OpenAttachment(ctx, c.Blobs, a)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ch, err)
	}
	defer rc.Close()
	if size > out.Limit {
		return "", switchboard.Permanent(fmt.Errorf("%s: %w", ch, attachmentTooLarge(ch, out, a.Name, size)))
	}
	return c.Client.UploadAttachment(ctx, out.Type, File{Name: a.Name, ContentType: out.ContentType, Body: rc, Size: size})
}
