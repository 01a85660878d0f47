package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/identity"
)

// Send delivers an agent's reply through Twilio's Messages API. It is the
// outbox's sender for the sms channel. An opt-out recorded since the reply
// was queued refuses it before any call to Twilio; Twilio's own refusal
// (21610) records one.
func (c *Channel) Send(ctx context.Context, m *switchboard.Outbound) (string, error) {
	to := recipientPhone(m.To)
	if to == "" {
		return "", switchboard.Permanent(errors.New("the customer has no phone number"))
	}
	if c.cfg.Client == nil {
		return "", switchboard.Permanent(errors.New("SMS is not configured (no Twilio credentials)"))
	}
	if c.cfg.OptOuts != nil {
		kw, err := c.cfg.OptOuts.OptOut(ctx, switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: to}, switchboard.ChannelSMS)
		if err != nil {
			return "", fmt.Errorf("sms: check opt-out: %w", err)
		}
		if kw != "" {
			return "", switchboard.Permanent(fmt.Errorf("the customer opted out of SMS (%s); nothing was sent", kw))
		}
	}
	if Segments(m.Text).TooLong {
		return "", switchboard.Permanent(fmt.Errorf("SMS text is longer than %d characters", MaxChars))
	}
	p := twilio.SendParams{To: to, From: c.cfg.From, MessagingServiceSID: c.cfg.MessagingServiceSID, Body: m.Text,
		StatusCallback: c.cfg.PublicURL + "/webhooks/twilio/status"}
	for _, a := range m.Attachments {
		if c.cfg.Blobs == nil {
			break
		}
		u, err := c.cfg.Blobs.URL(ctx, a.Key, 2*time.Hour)
		if err != nil {
			return "", fmt.Errorf("sms: media URL: %w", err)
		}
		p.MediaURLs = append(p.MediaURLs, u)
	}
	msg, err := c.cfg.Client.SendMessage(ctx, p)
	if err != nil {
		if twilio.IsUnsubscribed(err) && c.cfg.OptOuts != nil {
			if rerr := c.cfg.OptOuts.RecordOptOut(ctx, switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: to}, switchboard.ChannelSMS, "21610"); rerr != nil {
				c.cfg.Logger.Error("sms: record 21610 opt-out", "err", rerr)
			}
		}
		return "", fmt.Errorf("sms: send: %w", err)
	}
	return msg.SID, nil
}

func recipientPhone(ids []switchboard.IdentityRef) string {
	for _, id := range ids {
		if id.Kind == switchboard.IdentityPhone {
			return id.Value
		}
	}
	return ""
}

func normalisePhone(raw, region string) (switchboard.IdentityRef, error) {
	v, err := identity.Phone(raw, region)
	return switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: v}, err
}

// Check is the SMS policy: the composer and the send path both ask it.
func (c *Channel) Check(r switchboard.Recipient, d switchboard.Draft, now time.Time) switchboard.Decision {
	info := Segments(d.Text)
	dec := switchboard.Decision{Channel: switchboard.ChannelSMS, Allowed: true, Segments: info.Segments, Encoding: info.Encoding,
		Cost: Cost(info, c.cfg.PricePerSegment)}
	if info.ForcedBy != "" {
		dec.Details = map[string]any{"forced_ucs2_by": info.ForcedBy, "characters": info.Chars}
	}
	refuse := func(reason string) switchboard.Decision {
		dec.Allowed, dec.Reason = false, reason
		return dec
	}
	switch {
	case r.Identity(switchboard.IdentityPhone) == "":
		return refuse("the customer has no phone number")
	case r.OptOuts[switchboard.ChannelSMS] != "":
		return refuse(fmt.Sprintf("the customer opted out of SMS (%s); they can opt back in by texting START. Reply on another channel, such as WhatsApp or email.", r.OptOuts[switchboard.ChannelSMS]))
	case d.Template != nil:
		return refuse("SMS has no message templates; send plain text")
	case info.TooLong:
		return refuse(fmt.Sprintf("SMS text is limited to %d characters (this is %d)", MaxChars, info.Chars))
	}
	return dec
}
