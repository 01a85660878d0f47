package whatsapp

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

// MaxTextLen is the Cloud API's limit on a text message body, in
// characters.
const MaxTextLen = 4096

// APIError is a Graph API error reply; Client methods return it (through
// errors.As) for every non-2xx answer.
type APIError = meta.APIError

// Client sends messages through the Cloud API:
// POST {BaseURL}/{PhoneNumberID}/messages with a bearer token, and
// uploads media with POST {BaseURL}/{PhoneNumberID}/media.
//
// Errors: an invalid request, and a Graph 4xx other than a rate limit
// (HTTP 429, code 130429 throughput, 131056 pair rate), are wrapped with
// switchboard.Permanent so the outbox does not retry them. Note that
// sending outside the 24-hour window still returns 200 and a wamid: the
// 131047 failure arrives later as a failed Status, so check
// CanSendFreeForm before sending.
type Client struct {
	BaseURL       string // e.g. https://graph.facebook.com/v25.0, or a stand-in
	PhoneNumberID string
	Token         string
	HTTP          *http.Client // nil: http.DefaultClient; bound calls with ctx
}

// Template is an approved message template and its body parameters
// ({{1}}, {{2}}, … in order).
type Template struct {
	Name     string
	Language string // e.g. en_US
	Params   []string
}

type textRequest struct {
	MessagingProduct string   `json:"messaging_product"`
	RecipientType    string   `json:"recipient_type"`
	To               string   `json:"to"`
	Type             string   `json:"type"`
	Text             textBody `json:"text"`
}

type textBody struct {
	Body string `json:"body"`
}

type templateRequest struct {
	MessagingProduct string       `json:"messaging_product"`
	To               string       `json:"to"`
	Type             string       `json:"type"`
	Template         templateBody `json:"template"`
}

type templateBody struct {
	Name       string              `json:"name"`
	Language   templateLanguage    `json:"language"`
	Components []templateComponent `json:"components,omitempty"`
}

type templateLanguage struct {
	Code string `json:"code"`
}

type templateComponent struct {
	Type       string              `json:"type"`
	Parameters []templateParameter `json:"parameters"`
}

type templateParameter struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type mediaRequest struct {
	MessagingProduct string       `json:"messaging_product"`
	RecipientType    string       `json:"recipient_type"`
	To               string       `json:"to"`
	Type             string       `json:"type"`
	Image            *mediaObject `json:"image,omitempty"`
	Audio            *mediaObject `json:"audio,omitempty"`
	Video            *mediaObject `json:"video,omitempty"`
	Document         *mediaObject `json:"document,omitempty"`
	Sticker          *mediaObject `json:"sticker,omitempty"`
}

type mediaObject struct {
	ID       string `json:"id"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

type sendReply struct {
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
}

// SendText sends a free-form text message to to (a wa_id; a leading + is
// dropped, so an E.164 phone identity works) and returns its wamid. The
// body must be non-empty and at most MaxTextLen characters.
func (c *Client) SendText(ctx context.Context, to, body string) (wamid string, err error) {
	rcpt, err := recipient(to)
	if err != nil {
		return "", err
	}
	switch n := utf8.RuneCountInString(body); {
	case strings.TrimSpace(body) == "":
		return "", switchboard.Permanent(invalid("whatsapp: message text is empty"))
	case n > MaxTextLen:
		return "", switchboard.Permanent(switchboard.Errorf(switchboard.EPOLICY,
			"whatsapp: text is %d characters; WhatsApp allows at most %d", n, MaxTextLen))
	}
	return c.send(ctx, "text", textRequest{
		MessagingProduct: "whatsapp", RecipientType: "individual", To: rcpt,
		Type: "text", Text: textBody{Body: body},
	})
}

// SendTemplate sends an approved template with its body parameters and
// returns the wamid. Templates are what may be sent outside the 24-hour
// window. Parameters follow the rules RenderTemplate checks.
func (c *Client) SendTemplate(ctx context.Context, to string, tpl Template) (wamid string, err error) {
	rcpt, err := recipient(to)
	if err != nil {
		return "", err
	}
	switch {
	case strings.TrimSpace(tpl.Name) == "":
		return "", switchboard.Permanent(invalid("whatsapp: template name is empty"))
	case strings.TrimSpace(tpl.Language) == "":
		return "", switchboard.Permanent(invalid("whatsapp: template %q has no language", tpl.Name))
	}
	req := templateRequest{
		MessagingProduct: "whatsapp", To: rcpt, Type: "template",
		Template: templateBody{Name: tpl.Name, Language: templateLanguage{Code: tpl.Language}},
	}
	if len(tpl.Params) > 0 {
		params := make([]templateParameter, len(tpl.Params))
		for i, p := range tpl.Params {
			if err := checkParam(i+1, p); err != nil {
				return "", switchboard.Permanent(fmt.Errorf("whatsapp: template %q: %w", tpl.Name, err))
			}
			params[i] = templateParameter{Type: "text", Text: p}
		}
		req.Template.Components = []templateComponent{{Type: "body", Parameters: params}}
	}
	return c.send(ctx, "template", req)
}

// Upload is a file for UploadMedia.
type Upload struct {
	Name     string // the file's name; made ASCII for the form
	MimeType string // one of the supported media types (MediaFor)
	Body     io.Reader
	Size     int64 // exactly what Body yields
}

// UploadMedia uploads a file with POST {BaseURL}/{PhoneNumberID}/media,
// multipart with file, type and messaging_product=whatsapp, and returns
// the media id a media message sends
// (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#upload-media).
// Uploading reaches no customer, so every failure but a refusal is safe
// to retry.
func (c *Client) UploadMedia(ctx context.Context, f Upload) (mediaID string, err error) {
	if c.Token == "" {
		return "", switchboard.Permanent(invalid("whatsapp: no access token configured"))
	}
	endpoint, err := meta.Endpoint(c.BaseURL, c.PhoneNumberID, "media")
	if err != nil {
		return "", switchboard.Permanent(fmt.Errorf("whatsapp: %w", err))
	}
	var rep struct {
		ID string `json:"id"`
	}
	fields := [][2]string{{"messaging_product", "whatsapp"}, {"type", f.MimeType}}
	file := meta.File{Field: "file", Name: f.Name, ContentType: f.MimeType, Body: f.Body, Size: f.Size}
	if err := meta.Upload(ctx, c.HTTP, endpoint, c.Token, fields, file, &rep); err != nil {
		return "", fmt.Errorf("whatsapp: upload media: %w", err)
	}
	if rep.ID == "" {
		return "", errors.New("whatsapp: upload media: reply has no id")
	}
	return rep.ID, nil
}

// MediaMessage is a media message of an uploaded file.
type MediaMessage struct {
	Type     string // TypeImage, TypeAudio, TypeVideo, TypeDocument or TypeSticker
	ID       string // the media id UploadMedia returned
	Caption  string // image, video and document only
	Filename string // document only: the name the customer sees
}

// SendMedia sends an uploaded file as a media message and returns its
// wamid
// (https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/image-messages).
func (c *Client) SendMedia(ctx context.Context, to string, m MediaMessage) (wamid string, err error) {
	rcpt, err := recipient(to)
	if err != nil {
		return "", err
	}
	obj := &mediaObject{ID: m.ID, Caption: m.Caption, Filename: m.Filename}
	req := mediaRequest{MessagingProduct: "whatsapp", RecipientType: "individual", To: rcpt, Type: m.Type}
	captioned := true
	switch m.Type {
	case TypeImage:
		req.Image = obj
	case TypeVideo:
		req.Video = obj
	case TypeDocument:
		req.Document = obj
	case TypeAudio:
		req.Audio, captioned = obj, false
	case TypeSticker:
		req.Sticker, captioned = obj, false
	default:
		return "", switchboard.Permanent(invalid("whatsapp: %q is not a media message type", m.Type))
	}
	switch n := utf8.RuneCountInString(m.Caption); {
	case strings.TrimSpace(m.ID) == "":
		return "", switchboard.Permanent(invalid("whatsapp: %s message has no media id", m.Type))
	case m.Caption != "" && !captioned:
		return "", switchboard.Permanent(invalid("whatsapp: %s messages have no caption", m.Type))
	case m.Filename != "" && m.Type != TypeDocument:
		return "", switchboard.Permanent(invalid("whatsapp: only documents have a file name"))
	case n > MaxCaptionLen:
		return "", switchboard.Permanent(switchboard.Errorf(switchboard.EPOLICY,
			"whatsapp: caption is %d characters; WhatsApp allows at most %d", n, MaxCaptionLen))
	}
	return c.send(ctx, m.Type, req)
}

func (c *Client) send(ctx context.Context, kind string, req any) (string, error) {
	if c.Token == "" {
		return "", switchboard.Permanent(invalid("whatsapp: no access token configured"))
	}
	endpoint, err := meta.Endpoint(c.BaseURL, c.PhoneNumberID, "messages")
	if err != nil {
		return "", switchboard.Permanent(fmt.Errorf("whatsapp: %w", err))
	}
	var rep sendReply
	if err := meta.Call(ctx, c.HTTP, http.MethodPost, endpoint, c.Token, req, &rep); err != nil {
		return "", fmt.Errorf("whatsapp: send %s: %w", kind, err)
	}
	if len(rep.Messages) == 0 || rep.Messages[0].ID == "" {
		// Accepted but unidentified: a retry would send it twice.
		return "", switchboard.Permanent(fmt.Errorf("whatsapp: send %s: reply has no message id", kind))
	}
	return rep.Messages[0].ID, nil
}

// recipient turns a wa_id or E.164 number into the "to" the API documents
// (digits without +).
func recipient(to string) (string, error) {
	r := strings.TrimPrefix(strings.TrimSpace(to), "+")
	if r == "" {
		return "", switchboard.Permanent(invalid("whatsapp: recipient is empty"))
	}
	return r, nil
}
