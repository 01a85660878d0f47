package messenger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// Text limits per message, in characters.
const (
	MaxTextLenMessenger = 2000
	MaxTextLenInstagram = 1000
)

// MaxTextLen returns the text limit of ch: Instagram's for
// ChannelInstagram, Messenger's otherwise.
func MaxTextLen(ch switchboard.Channel) int {
	if ch == switchboard.ChannelInstagram {
		return MaxTextLenInstagram
	}
	return MaxTextLenMessenger
}

// CheckText reports, as an error safe to show an agent, why text cannot be
// sent on ch: empty (EINVALID) or over the limit (EPOLICY).
func CheckText(ch switchboard.Channel, text string) error {
	if strings.TrimSpace(text) == "" {
		return switchboard.Errorf(switchboard.EINVALID, "message text is empty")
	}
	if n, limit := utf8.RuneCountInString(text), MaxTextLen(ch); n > limit {
		return switchboard.Errorf(switchboard.EPOLICY, "text is %d characters; %s allows at most %d", n, platformName(ch), limit)
	}
	return nil
}

// Tag is a message tag that lets a message go out after the 24-hour
// window. The zero Tag sends a plain RESPONSE.
type Tag string

// TagHumanAgent allows a human agent's reply up to 7 days after the
// customer's last message; the app needs the Human Agent permission.
const TagHumanAgent Tag = "HUMAN_AGENT"

// APIError is a Graph API error reply; Client.Send returns it (through
// errors.As) for every non-2xx answer.
type APIError = meta.APIError

// Client sends text and attachments through the Send API:
// POST {BaseURL}/{PageID}/messages with the Page access token, uploading
// files first with POST {BaseURL}/{PageID}/message_attachments. Instagram
// messages go the same way, addressed to the IGSID; set Channel to
// ChannelInstagram for its shorter text limit.
//
// Errors: an invalid request, and a Graph 4xx other than a rate limit
// (such as code 10 / subcode 2018278, outside the allowed window), are
// wrapped with switchboard.Permanent so the outbox does not retry them.
type Client struct {
	BaseURL string // e.g. https://graph.facebook.com/v25.0, or a stand-in
	PageID  string
	Token   string
	HTTP    *http.Client        // nil: http.DefaultClient; bound calls with ctx
	Channel switchboard.Channel // ChannelMessenger (default) or ChannelInstagram
}

type sendRequest struct {
	Recipient     recipient `json:"recipient"`
	MessagingType string    `json:"messaging_type"`
	Tag           Tag       `json:"tag,omitempty"`
	Message       any       `json:"message"`
}

type recipient struct {
	ID string `json:"id"`
}

type textMessage struct {
	Text         string       `json:"text"`
	QuickReplies []quickReply `json:"quick_replies,omitempty"`
}

// quickReply is a button under a message; tapping it sends its title as
// the customer's message, with its payload
// (https://developers.facebook.com/docs/messenger-platform/send-messages/quick-replies).
type quickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

// MaxQuickReplies is the most quick replies a message may carry; a
// title is at most 20 characters.
const MaxQuickReplies = 13

type attachmentMessage struct {
	Attachment attachment `json:"attachment"`
}

type attachment struct {
	Type    string            `json:"type"`
	Payload attachmentPayload `json:"payload"`
}

type attachmentPayload struct {
	AttachmentID string `json:"attachment_id,omitempty"`
	IsReusable   bool   `json:"is_reusable,omitempty"`
}

type sendReply struct {
	RecipientID string `json:"recipient_id"`
	MessageID   string `json:"message_id"`
}

// Send sends text to recipientID (a PSID or IGSID) and returns the mid.
// With the zero tag it is sent as messaging_type RESPONSE (inside the
// 24-hour window); with TagHumanAgent as MESSAGE_TAG with that tag. Use
// SendMode to choose.
func (c *Client) Send(ctx context.Context, recipientID, text string, tag Tag) (messageID string, err error) {
	if err := CheckText(c.channel(), text); err != nil {
		return "", switchboard.Permanent(fmt.Errorf("%s: %w", c.channel(), err))
	}
	return c.send(ctx, recipientID, textMessage{Text: text}, tag)
}

// SendQuickReplies sends text with quick-reply buttons titled options
// (a tap sends the title back as the customer's text message).
func (c *Client) SendQuickReplies(ctx context.Context, recipientID, text string, options []string, tag Tag) (messageID string, err error) {
	if err := CheckText(c.channel(), text); err != nil {
		return "", switchboard.Permanent(fmt.Errorf("%s: %w", c.channel(), err))
	}
	if len(options) == 0 || len(options) > MaxQuickReplies {
		return "", switchboard.Permanent(invalid("%s: %d quick replies: want 1 to %d", c.channel(), len(options), MaxQuickReplies))
	}
	msg := textMessage{Text: text}
	for _, o := range options {
		if o == "" || len([]rune(o)) > 20 {
			return "", switchboard.Permanent(invalid("%s: quick reply title %q: want 1 to 20 characters", c.channel(), o))
		}
		msg.QuickReplies = append(msg.QuickReplies, quickReply{ContentType: "text", Title: o, Payload: "SB_" + o})
	}
	return c.send(ctx, recipientID, msg, tag)
}

// SendAttachment sends an uploaded attachment (UploadAttachment) of type
// kind to recipientID as a message of its own, as Send sends text:
// {"attachment":{"type":kind,"payload":{"attachment_id":id}}}
// (https://developers.facebook.com/docs/messenger-platform/reference/attachment-upload-api).
func (c *Client) SendAttachment(ctx context.Context, recipientID, kind, attachmentID string, tag Tag) (messageID string, err error) {
	switch {
	case kind != AttachmentImage && kind != AttachmentAudio && kind != AttachmentVideo && kind != AttachmentFile:
		return "", switchboard.Permanent(invalid("%s: attachment type %q is not image, audio, video or file", c.channel(), kind))
	case strings.TrimSpace(attachmentID) == "":
		return "", switchboard.Permanent(invalid("%s: attachment id is empty", c.channel()))
	}
	return c.send(ctx, recipientID, attachmentMessage{Attachment: attachment{Type: kind, Payload: attachmentPayload{AttachmentID: attachmentID}}}, tag)
}

func (c *Client) send(ctx context.Context, recipientID string, msg any, tag Tag) (string, error) {
	if strings.TrimSpace(recipientID) == "" {
		return "", switchboard.Permanent(invalid("%s: recipient id is empty", c.channel()))
	}
	req := sendRequest{Recipient: recipient{ID: recipientID}, MessagingType: ModeResponse, Message: msg}
	switch tag {
	case "":
	case TagHumanAgent:
		req.MessagingType, req.Tag = "MESSAGE_TAG", tag
	default:
		return "", switchboard.Permanent(invalid("%s: message tag %q is not supported", c.channel(), tag))
	}
	if c.Token == "" {
		return "", switchboard.Permanent(invalid("%s: no page access token configured", c.channel()))
	}
	endpoint, err := meta.Endpoint(c.BaseURL, c.PageID, "messages")
	if err != nil {
		return "", switchboard.Permanent(fmt.Errorf("%s: %w", c.channel(), err))
	}
	var rep sendReply
	if err := meta.Call(ctx, c.HTTP, http.MethodPost, endpoint, c.Token, req, &rep); err != nil {
		return "", fmt.Errorf("%s: send: %w", c.channel(), err)
	}
	if rep.MessageID == "" {
		// Accepted but unidentified: a retry would send it twice.
		return "", switchboard.Permanent(fmt.Errorf("%s: send: reply has no message_id", c.channel()))
	}
	return rep.MessageID, nil
}

// File is a file for UploadAttachment.
type File struct {
	Name        string // made ASCII for the form: Instagram refuses other names
	ContentType string // audio/* for an audio attachment, as Meta requires
	Body        io.Reader
	Size        int64 // exactly what Body yields
}

// UploadAttachment uploads a file of type kind (image, audio, video or
// file) with the Attachment Upload API, POST
// {BaseURL}/{PageID}/message_attachments, multipart with
// message={"attachment":{"type":kind,"payload":{"is_reusable":true}}},
// filedata and, for Instagram, platform=instagram, and returns its
// attachment_id
// (https://developers.facebook.com/docs/messenger-platform/reference/attachment-upload-api,
// https://developers.facebook.com/documentation/business-messaging/instagram-messaging/features/attachment-upload).
// Uploading reaches no customer, so every failure but a refusal is safe
// to retry.
func (c *Client) UploadAttachment(ctx context.Context, kind string, f File) (attachmentID string, err error) {
	if c.Token == "" {
		return "", switchboard.Permanent(invalid("%s: no page access token configured", c.channel()))
	}
	endpoint, err := meta.Endpoint(c.BaseURL, c.PageID, "message_attachments")
	if err != nil {
		return "", switchboard.Permanent(fmt.Errorf("%s: %w", c.channel(), err))
	}
	// Reusable, as every documented upload is: an id uploaded otherwise
	// is not promised to be sendable at all.
	msg, err := meta.MarshalJSON(attachmentMessage{Attachment: attachment{Type: kind, Payload: attachmentPayload{IsReusable: true}}})
	if err != nil {
		return "", switchboard.Permanent(fmt.Errorf("%s: upload: %w", c.channel(), err))
	}
	var fields [][2]string
	if c.channel() == switchboard.ChannelInstagram {
		fields = append(fields, [2]string{"platform", "instagram"})
	}
	fields = append(fields, [2]string{"message", string(msg)})
	var rep struct {
		AttachmentID string `json:"attachment_id"`
	}
	file := meta.File{Field: "filedata", Name: f.Name, ContentType: f.ContentType, Body: f.Body, Size: f.Size}
	if err := meta.Upload(ctx, c.HTTP, endpoint, c.Token, fields, file, &rep); err != nil {
		return "", fmt.Errorf("%s: upload: %w", c.channel(), err)
	}
	if rep.AttachmentID == "" {
		return "", fmt.Errorf("%s: upload: reply has no attachment_id", c.channel())
	}
	return rep.AttachmentID, nil
}

func (c *Client) channel() switchboard.Channel {
	if c.Channel == switchboard.ChannelInstagram {
		return switchboard.ChannelInstagram
	}
	return switchboard.ChannelMessenger
}

// IsOutsideWindow reports whether err is Meta refusing a send because the
// messaging window has closed (code 10, subcode 2018278).
func IsOutsideWindow(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == 10 && e.Subcode == 2018278
}
