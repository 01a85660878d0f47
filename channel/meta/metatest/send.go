package metatest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// Text limits the send endpoints enforce, in characters.
const (
	MaxWhatsAppText  = 4096
	MaxMessengerText = 2000
	MaxInstagramText = 1000
	// MaxWhatsAppCaption is the caption limit of image, video and
	// document messages.
	MaxWhatsAppCaption = 1024
)

// Error 131047, the asynchronous failure of a free-form WhatsApp message
// outside the 24-hour window.
const (
	CodeReEngagement    = 131047
	reEngagementTitle   = "Re-engagement message"
	reEngagementDetails = "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
)

// WhatsAppSend is one message accepted by POST /{phone-number-id}/messages.
type WhatsAppSend struct {
	PhoneNumberID string
	WAMID         string
	To            string
	Type          string // text, template, image, audio, video, document, sticker
	Text          string // text.body, or the media caption
	Template      *TemplateSend
	MediaID       string // media messages: id or link
	MediaLink     string
	Filename      string // documents
	// WindowClosed: the recipient's window was closed, so a free-form
	// message gets a failed status (131047) instead of delivery.
	WindowClosed bool
	Body         []byte // the request body as received
}

// TemplateSend is a template message's name, language and body
// parameters.
type TemplateSend struct {
	Name     string
	Language string
	Params   []string // the text parameters of the body component, in order
}

// MessengerSend is one message accepted by POST /{page-id}/messages.
type MessengerSend struct {
	PageID        string // the id in the path
	Instagram     bool   // addressed to an Instagram user
	MID           string
	RecipientID   string // PSID or IGSID
	MessagingType string // RESPONSE, UPDATE or MESSAGE_TAG
	Tag           string
	Text          string
	Attachment    *AttachmentSend // set instead of Text for an attachment
	Body          []byte          // the request body as received
}

// AttachmentSend is the attachment of a Messenger or Instagram message.
type AttachmentSend struct {
	Type         string // image, audio, video or file
	AttachmentID string // an uploaded attachment's id, or
	URL          string // a URL Meta would fetch
}

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request, id string) {
	body, err := readBody(r)
	if err != nil {
		invalidParam(w, err.Error())
		return
	}
	switch id {
	case s.phoneNumberID:
		s.sendWhatsApp(w, body)
	case s.pageID, s.igAccountID:
		s.sendMessenger(w, id, body)
	case "me":
		s.sendMessenger(w, s.pageID, body)
	default:
		unknownObject(w, "post", id)
	}
}

type waMediaParam struct {
	ID       string `json:"id"`
	Link     string `json:"link"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

type waSendRequest struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Status           string `json:"status"`
	MessageID        string `json:"message_id"`
	Text             *struct {
		Body       string `json:"body"`
		PreviewURL bool   `json:"preview_url"`
	} `json:"text"`
	Template *struct {
		Name     string `json:"name"`
		Language *struct {
			Code string `json:"code"`
		} `json:"language"`
		Components []struct {
			Type       string `json:"type"`
			Parameters []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"parameters"`
		} `json:"components"`
	} `json:"template"`
	Image    *waMediaParam `json:"image"`
	Audio    *waMediaParam `json:"audio"`
	Video    *waMediaParam `json:"video"`
	Document *waMediaParam `json:"document"`
	Sticker  *waMediaParam `json:"sticker"`
}

func (s *Server) sendWhatsApp(w http.ResponseWriter, body []byte) {
	var req waSendRequest
	if err := json.Unmarshal(body, &req); err != nil {
		invalidParam(w, "request body is not valid JSON: "+err.Error())
		return
	}
	if req.MessagingProduct != "whatsapp" {
		graphError(w, http.StatusBadRequest, graphErr{
			Message: "(#100) The parameter messaging_product is required.", Type: "OAuthException", Code: 100,
		})
		return
	}
	if req.Status != "" { // read receipt / typing indicator
		if req.Status != "read" || req.MessageID == "" {
			invalidParam(w, `a status update needs status "read" and a message_id`)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Success bool `json:"success"`
		}{true})
		return
	}
	if !digitsOnly(req.To) {
		invalidParam(w, "Param to must be the recipient's phone number in digits (wa_id)")
		return
	}
	if req.RecipientType != "" && req.RecipientType != "individual" {
		invalidParam(w, "Param recipient_type must be individual")
		return
	}
	send := WhatsAppSend{PhoneNumberID: s.phoneNumberID, To: req.To, Type: req.Type, Body: body}
	if send.Type == "" {
		send.Type = "text"
	}
	switch send.Type {
	case "text":
		switch {
		case req.Text == nil || strings.TrimSpace(req.Text.Body) == "":
			invalidParam(w, "Param text['body'] is required")
			return
		case utf8.RuneCountInString(req.Text.Body) > MaxWhatsAppText:
			invalidParam(w, "Param text['body'] must be at most "+strconv.Itoa(MaxWhatsAppText)+" characters long.")
			return
		}
		send.Text = req.Text.Body
	case "template":
		t := req.Template
		switch {
		case t == nil || strings.TrimSpace(t.Name) == "":
			invalidParam(w, "Param template['name'] is required")
			return
		case t.Language == nil || strings.TrimSpace(t.Language.Code) == "":
			invalidParam(w, "Param template['language']['code'] is required")
			return
		}
		ts := &TemplateSend{Name: t.Name, Language: t.Language.Code}
		for _, c := range t.Components {
			if !strings.EqualFold(c.Type, "body") {
				continue
			}
			for _, p := range c.Parameters {
				ts.Params = append(ts.Params, p.Text)
			}
		}
		send.Template = ts
	case "image", "audio", "video", "document", "sticker":
		m := map[string]*waMediaParam{"image": req.Image, "audio": req.Audio, "video": req.Video,
			"document": req.Document, "sticker": req.Sticker}[send.Type]
		if m == nil || (m.ID == "") == (m.Link == "") {
			invalidParam(w, "Param "+send.Type+" needs exactly one of id and link")
			return
		}
		if msg := s.checkWhatsAppMedia(send.Type, m); msg != "" {
			invalidParam(w, msg)
			return
		}
		send.MediaID, send.MediaLink, send.Text, send.Filename = m.ID, m.Link, m.Caption, m.Filename
	default:
		invalidParam(w, "Param type must be one of text, template, image, audio, video, document, sticker")
		return
	}
	send.WAMID = newWAMID()
	s.mu.Lock()
	send.WindowClosed = s.waClosed[send.To] && send.Type != "template"
	s.waSends = append(s.waSends, send)
	s.mu.Unlock()

	type contact struct {
		Input string `json:"input"`
		WAID  string `json:"wa_id"`
	}
	type message struct {
		ID string `json:"id"`
	}
	writeJSON(w, http.StatusOK, struct {
		MessagingProduct string    `json:"messaging_product"`
		Contacts         []contact `json:"contacts"`
		Messages         []message `json:"messages"`
	}{"whatsapp", []contact{{req.To, send.To}}, []message{{send.WAMID}}})

	s.async(func(ctx context.Context) { s.postStatuses(ctx, send) })
}

// checkWhatsAppMedia returns why a media object cannot be sent as a
// message of type kind, or "".
func (s *Server) checkWhatsAppMedia(kind string, m *waMediaParam) string {
	switch n := utf8.RuneCountInString(m.Caption); {
	case m.Caption != "" && (kind == "audio" || kind == "sticker"):
		return "Param " + kind + "['caption'] is not supported for " + kind + " messages"
	case n > MaxWhatsAppCaption:
		return "Param " + kind + "['caption'] must be at most " + strconv.Itoa(MaxWhatsAppCaption) + " characters long."
	case m.Filename != "" && kind != "document":
		return "Param " + kind + "['filename'] is only supported for document messages"
	case m.ID == "":
		return ""
	}
	md := s.lookupMedia(m.ID)
	if md == nil {
		return "Param " + kind + "['id'] is not a valid media id: " + m.ID
	}
	if lim, ok := waUploadTypes[baseType(md.mimeType)]; ok && lim.kind != kind {
		return "Param " + kind + "['id'] names " + md.mimeType + " media, which cannot be sent as " + kind
	}
	return ""
}

// postStatuses posts what Meta reports after a send: sent, delivered and
// read, each in its own webhook, or a single failed status for a
// free-form message outside the window.
func (s *Server) postStatuses(ctx context.Context, send WhatsAppSend) {
	status := func(st string) waStatus {
		return waStatus{ID: send.WAMID, Status: st, Timestamp: strconv.FormatInt(s.now().Unix(), 10), RecipientID: send.To}
	}
	if send.WindowClosed {
		st := status("failed")
		st.Errors = []waError{{
			Code: CodeReEngagement, Title: reEngagementTitle, Message: reEngagementTitle,
			ErrorData: errorData{Details: reEngagementDetails},
			Href:      "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
		}}
		s.post(ctx, s.waWebhook(s.webhookURL, waValue{Statuses: []waStatus{st}}))
		return
	}
	category := "service"
	if send.Type == "template" {
		category = "utility"
	}
	conv := &waConversation{ID: hex.EncodeToString(randomBytes(16))}
	conv.Origin.Type = category
	pricing := &waPricing{Billable: category != "service", PricingModel: "PMP", Category: category}
	for _, name := range []string{"sent", "delivered", "read"} {
		if ctx.Err() != nil {
			return
		}
		st := status(name)
		if name != "read" {
			st.Conversation, st.Pricing = conv, pricing
		}
		s.post(ctx, s.waWebhook(s.webhookURL, waValue{Statuses: []waStatus{st}}))
	}
}

type msSendRequest struct {
	Recipient *struct {
		ID string `json:"id"`
	} `json:"recipient"`
	MessagingType string `json:"messaging_type"`
	Tag           string `json:"tag"`
	SenderAction  string `json:"sender_action"`
	Message       *struct {
		Text       string `json:"text"`
		Attachment *struct {
			Type    string `json:"type"`
			Payload *struct {
				AttachmentID string          `json:"attachment_id"`
				URL          string          `json:"url"`
				IsReusable   json.RawMessage `json:"is_reusable"`
			} `json:"payload"`
		} `json:"attachment"`
	} `json:"message"`
}

func (s *Server) sendMessenger(w http.ResponseWriter, pathID string, body []byte) {
	var req msSendRequest
	if err := json.Unmarshal(body, &req); err != nil {
		invalidParam(w, "request body is not valid JSON: "+err.Error())
		return
	}
	if req.Recipient == nil || strings.TrimSpace(req.Recipient.ID) == "" {
		graphError(w, http.StatusBadRequest, graphErr{Message: "(#100) The parameter recipient is required", Type: "OAuthException", Code: 100})
		return
	}
	rcpt := req.Recipient.ID
	type reply struct {
		RecipientID string `json:"recipient_id"`
		MessageID   string `json:"message_id,omitempty"`
	}
	if req.SenderAction != "" {
		switch req.SenderAction {
		case "typing_on", "typing_off", "mark_seen":
			writeJSON(w, http.StatusOK, reply{RecipientID: rcpt})
		default:
			graphError(w, http.StatusBadRequest, graphErr{Message: "(#100) Param sender_action must be one of {MARK_SEEN, TYPING_ON, TYPING_OFF}", Type: "OAuthException", Code: 100})
		}
		return
	}
	s.mu.Lock()
	instagram := pathID == s.igAccountID || s.igUsers[rcpt]
	windowClosed := s.msClosed[rcpt]
	s.mu.Unlock()
	limit := MaxMessengerText
	if instagram {
		limit = MaxInstagramText
	}
	bad := func(msg string) {
		graphError(w, http.StatusBadRequest, graphErr{Message: msg, Type: "OAuthException", Code: 100})
	}
	switch req.MessagingType {
	case "RESPONSE", "UPDATE":
	case "MESSAGE_TAG":
		if req.Tag != "HUMAN_AGENT" {
			bad("(#100) Param tag must be HUMAN_AGENT when messaging_type is MESSAGE_TAG")
			return
		}
	case "":
		bad("(#100) The parameter messaging_type is required")
		return
	default:
		bad("(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
		return
	}
	var att *AttachmentSend
	switch {
	case req.Message != nil && req.Message.Attachment != nil:
		if req.Message.Text != "" {
			bad("(#100) Param message must have text or an attachment, not both")
			return
		}
		var msg string
		if att, msg = s.checkMessengerAttachment(instagram, req.Message.Attachment.Type, req.Message.Attachment.Payload); msg != "" {
			bad(msg)
			return
		}
	case req.Message == nil || strings.TrimSpace(req.Message.Text) == "":
		bad("(#100) The parameter message[text] is required")
		return
	case utf8.RuneCountInString(req.Message.Text) > limit:
		bad("(#100) Length of param message[text] must be less than or equal to " + strconv.Itoa(limit))
		return
	}
	if windowClosed && req.MessagingType != "MESSAGE_TAG" {
		graphError(w, http.StatusBadRequest, graphErr{
			Message: "(#10) This message is sent outside of allowed window. Learn more about the new policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview",
			Type:    "OAuthException", Code: 10, Subcode: 2018278,
		})
		return
	}
	send := MessengerSend{PageID: pathID, Instagram: instagram, RecipientID: rcpt,
		MessagingType: req.MessagingType, Tag: req.Tag, Text: req.Message.Text, Attachment: att, Body: body}
	if instagram {
		send.MID = newIGMID()
	} else {
		send.MID = newMID()
	}
	s.mu.Lock()
	s.msSends = append(s.msSends, send)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, reply{RecipientID: rcpt, MessageID: send.MID})

	s.async(func(ctx context.Context) {
		now := s.now().UnixMilli()
		if send.Instagram {
			s.post(ctx, s.msWebhook(s.webhookURL, meta.ObjectInstagram, s.igAccountID, msEvent{
				Sender: msID{rcpt}, Recipient: msID{s.igAccountID}, Timestamp: now, Read: &msRead{MID: send.MID},
			}))
			return
		}
		s.post(ctx, s.msWebhook(s.webhookURL, meta.ObjectPage, s.pageID, msEvent{
			Sender: msID{rcpt}, Recipient: msID{s.pageID},
			Delivery: &msDelivery{MIDs: []string{send.MID}, Watermark: now},
		}))
	})
}

// checkMessengerAttachment reads a message's attachment, or says why it
// cannot be sent.
func (s *Server) checkMessengerAttachment(instagram bool, kind string, p *struct {
	AttachmentID string          `json:"attachment_id"`
	URL          string          `json:"url"`
	IsReusable   json.RawMessage `json:"is_reusable"`
}) (*AttachmentSend, string) {
	switch {
	case kind != "image" && kind != "audio" && kind != "video" && kind != "file":
		return nil, "(#100) Param message[attachment][type] must be one of {image, audio, video, file}"
	case p == nil || (p.AttachmentID == "") == (p.URL == ""):
		return nil, "(#100) Param message[attachment][payload] needs exactly one of attachment_id and url"
	case p.URL != "":
		return &AttachmentSend{Type: kind, URL: p.URL}, ""
	}
	s.mu.Lock()
	a := s.attachments[p.AttachmentID]
	s.mu.Unlock()
	switch {
	case a == nil || a.instagram != instagram:
		return nil, "(#100) Param message[attachment][payload][attachment_id] is not a valid attachment id: " + p.AttachmentID
	case a.kind != kind:
		return nil, "(#100) Attachment " + p.AttachmentID + " was uploaded as " + a.kind + ", not " + kind
	}
	return &AttachmentSend{Type: kind, AttachmentID: p.AttachmentID}, ""
}
