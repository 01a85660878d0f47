package inbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/parse"
	"github.com/switchboard-inbox/switchboard/identity"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/view"
)

// replyChannel is where a reply goes when the agent names no channel: the
// customer's most recent inbound channel that can carry a reply (after a
// voicemail that is SMS to the same number) and has a sender configured,
// else the conversation's last channel's reply channel, which the policy
// check then refuses with the reason.
func (s *Service) replyChannel(c switchboard.Conversation, r switchboard.Recipient) switchboard.Channel {
	type seen struct {
		ch switchboard.Channel
		at time.Time
	}
	var recent []seen
	for ch, at := range r.LastInbound {
		recent = append(recent, seen{ch, at})
	}
	sort.Slice(recent, func(i, j int) bool {
		if !recent[i].at.Equal(recent[j].at) {
			return recent[i].at.After(recent[j].at)
		}
		return recent[i].ch < recent[j].ch
	})
	for _, x := range recent {
		if _, sender := s.channel(x.ch.ReplyChannel()); sender != nil {
			return x.ch.ReplyChannel()
		}
	}
	return c.LastChannel.ReplyChannel()
}

// decide asks the channel's policy about a draft, at the service's time.
// The draft's channel defaults to replyChannel.
func (s *Service) decide(ctx context.Context, conversationID string, d switchboard.Draft) (switchboard.Decision, error) {
	c, err := s.store.GetConversation(ctx, conversationID)
	if err != nil {
		return switchboard.Decision{}, err
	}
	rec, err := s.store.Recipient(ctx, conversationID)
	if err != nil {
		return switchboard.Decision{}, err
	}
	return s.decideFor(c, rec, d), nil
}

// decideFor is decide for a conversation and recipient already read.
func (s *Service) decideFor(c switchboard.Conversation, rec switchboard.Recipient, d switchboard.Draft) switchboard.Decision {
	if d.Channel == "" {
		d.Channel = s.replyChannel(c, rec)
	}
	policy, sender := s.channel(d.Channel)
	switch {
	case sender == nil:
		return switchboard.Decision{Channel: d.Channel, Reason: fmt.Sprintf("replies cannot be sent on %s: the channel is not configured for sending", d.Channel)}
	case policy == nil && d.Template != nil:
		return switchboard.Decision{Channel: d.Channel, Reason: "templates are only used on WhatsApp"}
	case policy == nil:
		return switchboard.Decision{Channel: d.Channel, Allowed: true}
	}
	dec := policy.Check(rec, d, s.clock.Now())
	dec.Channel = d.Channel
	return dec
}

// Compose answers what a channel allows now in a conversation ("": the
// default reply channel), for the composer: the same decision Reply makes,
// with the actor's uploads named by attachments attached.
func (s *Service) Compose(ctx context.Context, actor switchboard.Actor, conversationID string, ch switchboard.Channel, text string, attachments ...string) (switchboard.Decision, error) {
	if ch != "" && !ch.Valid() {
		return switchboard.Decision{}, switchboard.Errorf(switchboard.EINVALID, "unknown channel %q", ch)
	}
	atts, err := s.uploads(ctx, actor, attachments)
	if err != nil {
		return switchboard.Decision{}, err
	}
	return s.decide(ctx, conversationID, switchboard.Draft{Channel: ch, Text: text, Attachments: atts})
}

// Reply stores an agent's reply, queued for sending, or an internal note.
// The channel's policy is asked first, as the composer asked it: a reply
// it refuses is an EPOLICY error carrying the decision, and nothing is
// stored. Attachments are the actor's own uploads.
func (s *Service) Reply(ctx context.Context, actor switchboard.Actor, r switchboard.Reply) (view.Message, error) {
	if actor.IsSystem() || actor.ID == "" {
		return view.Message{}, switchboard.Errorf(switchboard.EFORBIDDEN, "replies are written by agents")
	}
	if r.Channel != "" && !r.Channel.Valid() {
		return view.Message{}, switchboard.Errorf(switchboard.EINVALID, "unknown channel %q", r.Channel)
	}
	html := r.HTML
	if html != "" {
		html = parse.SanitizeHTML(html)
	}
	atts, err := s.uploads(ctx, actor, r.Attachments)
	if err != nil {
		return view.Message{}, err
	}
	text, ch := r.Text, r.Channel
	var meta json.RawMessage
	if !r.Note {
		dec, err := s.decide(ctx, r.ConversationID, switchboard.Draft{Channel: r.Channel, Text: r.Text, Attachments: atts, Template: r.Template})
		if err != nil {
			return view.Message{}, err
		}
		if !dec.Allowed {
			return view.Message{}, &switchboard.Error{Code: switchboard.EPOLICY, Message: dec.Reason, Details: dec}
		}
		ch = dec.Channel
		if len(r.Cc)+len(r.Bcc) > 0 {
			if ch != switchboard.ChannelEmail && ch != switchboard.ChannelWebform {
				return view.Message{}, switchboard.Errorf(switchboard.EINVALID, "cc and bcc are for e-mail replies")
			}
			for _, a := range append(slices.Clip(r.Cc), r.Bcc...) {
				if _, err := identity.Email(a); err != nil {
					return view.Message{}, switchboard.Errorf(switchboard.EINVALID, "cc/bcc address %q: %v", a, err)
				}
			}
			meta, _ = json.Marshal(map[string]any{"cc": r.Cc, "bcc": r.Bcc})
		}
		if r.Template != nil {
			// The reply shows what the customer receives; the sender
			// reads the template from the metadata.
			text = dec.Text
			meta, _ = json.Marshal(map[string]any{"template": r.Template})
		}
	}
	m, err := s.store.CreateReply(ctx, store.Reply{
		ConversationID: r.ConversationID, AgentID: actor.ID, Channel: ch, Text: text, HTML: html, Note: r.Note,
		Attachments: atts, Metadata: meta,
	})
	if err != nil {
		return view.Message{}, err
	}
	if !r.Note && s.replyQueued != nil {
		s.replyQueued()
	}
	s.announceReply(ctx, actor.ID, m)
	return view.NewMessage(ctx, m, s.sign)
}

// SendAutomatic queues a message Switchboard itself sends (the router's
// out-of-hours acknowledgement), on ch and under ch's policy: where the
// channel cannot carry it (no sender, an SMS opt-out, a closed WhatsApp
// window) it is an EPOLICY error with the reason, and nothing is stored.
// It is marked automatic, which is never a conversation's first response
// (and, on e-mail, carries Auto-Submitted).
func (s *Service) SendAutomatic(ctx context.Context, conversationID string, ch switchboard.Channel, text string) (view.Message, error) {
	dec, err := s.decide(ctx, conversationID, switchboard.Draft{Channel: ch, Text: text})
	if err != nil {
		return view.Message{}, err
	}
	if !dec.Allowed {
		return view.Message{}, &switchboard.Error{Code: switchboard.EPOLICY, Message: dec.Reason, Details: dec}
	}
	m, err := s.queueAutomatic(ctx, store.Reply{ConversationID: conversationID, Channel: dec.Channel, Text: text})
	if err != nil {
		return view.Message{}, err
	}
	return view.NewMessage(ctx, m, s.sign)
}

// queueAutomatic stores r, which the channel's policy allowed, as an
// automatic message (the acknowledgement, a survey), wakes the outbox and
// announces it.
func (s *Service) queueAutomatic(ctx context.Context, r store.Reply) (switchboard.Message, error) {
	r.Auto = true
	m, err := s.store.CreateReply(ctx, r)
	if err != nil {
		return m, err
	}
	if s.replyQueued != nil {
		s.replyQueued()
	}
	s.announceReply(ctx, "", m)
	return m, nil
}

// announceReply publishes a new outbound message or note and the
// conversation it changed.
func (s *Service) announceReply(ctx context.Context, by string, m switchboard.Message) {
	evs, err := s.messageEvents(ctx, switchboard.BusMessageCreated, by, m.ID)
	if err == nil {
		var more []switchboard.BusEvent
		more, err = s.conversationEvents(ctx, by, m.ConversationID)
		evs = append(evs, more...)
	}
	s.announce(ctx, evs, err)
}

// Original returns a message exactly as it was received (raw MIME for
// e-mail, the provider's payload otherwise) and its content type.
func (s *Service) Original(ctx context.Context, actor switchboard.Actor, messageID string) (string, io.ReadCloser, error) {
	m, err := s.store.GetMessage(ctx, messageID)
	if err != nil {
		return "", nil, err
	}
	body, err := s.store.Original(ctx, m.ID)
	if switchboard.ErrorCode(err) == switchboard.ENOTFOUND && s.blobs != nil {
		// Large originals live in the object store.
		var meta map[string]any
		json.Unmarshal(m.Metadata, &meta)
		if key, _ := meta[switchboard.MetaOriginalKey].(string); key != "" {
			rc, _, err := s.blobs.Get(ctx, key)
			if err != nil {
				return "", nil, fmt.Errorf("inbox: original of %s: %w", m.ID, err)
			}
			return "message/rfc822", rc, nil
		}
	}
	if err != nil {
		return "", nil, err
	}
	ct := "application/octet-stream"
	switch {
	case m.Channel == switchboard.ChannelEmail:
		ct = "message/rfc822"
	case json.Valid(body):
		ct = "application/json"
	case m.Channel == switchboard.ChannelSMS || m.Channel == switchboard.ChannelVoice:
		ct = "application/x-www-form-urlencoded"
	}
	return ct, io.NopCloser(bytes.NewReader(body)), nil
}
