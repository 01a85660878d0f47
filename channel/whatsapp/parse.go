package whatsapp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/identity"
)

// maxUnix is 9999-12-31T23:59:59Z: a later "timestamp" is not a time.
const maxUnix = 253402300799

type wireBody struct {
	Object string      `json:"object"`
	Entry  []wireEntry `json:"entry"`
}

type wireEntry struct {
	ID      string `json:"id"`
	Changes []struct {
		Field string          `json:"field"`
		Value json.RawMessage `json:"value"`
	} `json:"changes"`
}

type wireValue struct {
	Metadata struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []wireContact     `json:"contacts"`
	Messages []json.RawMessage `json:"messages"`
	Statuses []json.RawMessage `json:"statuses"`
	Errors   []wireError       `json:"errors"`
}

type wireContact struct {
	Profile struct {
		Name     string `json:"name"`
		Username string `json:"username"`
	} `json:"profile"`
	WAID   string `json:"wa_id"`
	UserID string `json:"user_id"`
}

type wireError struct {
	Code      int    `json:"code"`
	Title     string `json:"title"`
	Message   string `json:"message"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

type wireMedia struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
	Voice    bool   `json:"voice"`
}

type wireMessage struct {
	From       string          `json:"from"`
	FromUserID string          `json:"from_user_id"`
	ID         string          `json:"id"`
	Timestamp  json.RawMessage `json:"timestamp"`
	Type       string          `json:"type"`
	Text       *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *wireMedia `json:"image"`
	Audio    *wireMedia `json:"audio"`
	Video    *wireMedia `json:"video"`
	Document *wireMedia `json:"document"`
	Sticker  *wireMedia `json:"sticker"`
	Location *struct {
		Latitude  json.RawMessage `json:"latitude"`
		Longitude json.RawMessage `json:"longitude"`
		Name      string          `json:"name"`
		Address   string          `json:"address"`
		URL       string          `json:"url"`
	} `json:"location"`
	Reaction    *Reaction `json:"reaction"`
	Interactive *struct {
		Type        string `json:"type"`
		ButtonReply *Reply `json:"button_reply"`
		ListReply   *Reply `json:"list_reply"`
		NFMReply    *struct {
			Name         string `json:"name"`
			Body         string `json:"body"`
			ResponseJSON string `json:"response_json"`
		} `json:"nfm_reply"`
	} `json:"interactive"`
	Button   *Button `json:"button"`
	Contacts []struct {
		Name struct {
			FormattedName string `json:"formatted_name"`
			FirstName     string `json:"first_name"`
			LastName      string `json:"last_name"`
		} `json:"name"`
		Phones []struct {
			Phone string `json:"phone"`
		} `json:"phones"`
	} `json:"contacts"`
	System *struct {
		Body    string `json:"body"`
		Type    string `json:"type"`
		NewWAID string `json:"new_wa_id"`
	} `json:"system"`
	Context  *Context        `json:"context"`
	Referral json.RawMessage `json:"referral"`
	Errors   []wireError     `json:"errors"`
}

type wireStatus struct {
	ID              string          `json:"id"`
	Status          string          `json:"status"`
	Timestamp       json.RawMessage `json:"timestamp"`
	RecipientID     string          `json:"recipient_id"`
	RecipientUserID string          `json:"recipient_user_id"`
	Errors          []wireError     `json:"errors"`
}

// Parse reads a WhatsApp Cloud API webhook body (object
// "whatsapp_business_account"; verify its signature first). now is when
// the webhook arrived; it becomes each message's AcceptedAt.
//
// Only changes with field "messages" are read; other subscribed fields
// (template or account updates) are skipped. Every message is kept: a type
// this package does not know gets a placeholder text and its raw type in
// the metadata.
//
// The error, an EINVALID *switchboard.Error wrapped with where it was
// found, covers malformed JSON, another object, and a message or status
// without an id, with an unreadable timestamp, or (for messages) without
// any sender identity: a payload Meta signed that cannot be read whole
// is a bug worth seeing, not something to half-store.
func Parse(body []byte, now time.Time) (Events, error) {
	var w wireBody
	if err := json.Unmarshal(body, &w); err != nil {
		return Events{}, invalid("whatsapp webhook: malformed JSON: %v", err)
	}
	if w.Object != meta.ObjectWhatsApp {
		return Events{}, invalid("whatsapp webhook: object is %q, want %q", w.Object, meta.ObjectWhatsApp)
	}
	var ev Events
	for ei, e := range w.Entry {
		for ci, c := range e.Changes {
			if c.Field != "messages" || meta.IsNull(c.Value) {
				continue
			}
			where := fmt.Sprintf("whatsapp webhook: entry %d, change %d", ei, ci)
			var v wireValue
			if err := json.Unmarshal(c.Value, &v); err != nil {
				return Events{}, invalid("%s: malformed value: %v", where, err)
			}
			for mi, raw := range v.Messages {
				m, err := parseMessage(raw, &v, now)
				if err != nil {
					return Events{}, fmt.Errorf("%s, message %d: %w", where, mi, err)
				}
				ev.Messages = append(ev.Messages, m)
			}
			for si, raw := range v.Statuses {
				s, err := parseStatus(raw, v.Metadata.PhoneNumberID)
				if err != nil {
					return Events{}, fmt.Errorf("%s, status %d: %w", where, si, err)
				}
				ev.Statuses = append(ev.Statuses, s)
			}
			ev.Errors = append(ev.Errors, errorDetails(v.Errors)...)
		}
	}
	return ev, nil
}

func parseMessage(raw json.RawMessage, v *wireValue, now time.Time) (Message, error) {
	var w wireMessage
	if err := json.Unmarshal(raw, &w); err != nil {
		return Message{}, invalid("malformed message: %v", err)
	}
	if strings.TrimSpace(w.ID) == "" {
		return Message{}, invalid("message has no id")
	}
	ts, err := parseUnix(w.Timestamp)
	if err != nil {
		return Message{}, fmt.Errorf("message %s: %w", w.ID, err)
	}
	m := Message{
		ID: w.ID, Type: w.Type, From: w.From, UserID: w.FromUserID,
		PhoneNumberID: v.Metadata.PhoneNumberID, DisplayPhoneNumber: v.Metadata.DisplayPhoneNumber,
		Timestamp: ts, AcceptedAt: now,
		Context: w.Context, Errors: errorDetails(w.Errors), Raw: raw,
	}
	if len(w.Referral) > 0 && !meta.IsNull(w.Referral) {
		m.Referral = w.Referral
	}
	if c := matchContact(v.Contacts, &w); c != nil {
		m.Name, m.Username = c.Profile.Name, c.Profile.Username
		if m.UserID == "" {
			m.UserID = c.UserID
		}
		if m.From == "" {
			m.From = c.WAID
		}
	}
	m.UserID = strings.TrimSpace(m.UserID)
	if m.From != "" {
		phone, err := identity.PhoneFromWAID(m.From)
		switch {
		case err == nil:
			m.Phone = phone
		case m.UserID == "":
			return Message{}, fmt.Errorf("message %s: sender: %w", w.ID, err)
		}
		// With a BSUID the message still has a sender; the unusable wa_id
		// goes to the metadata rather than failing the whole webhook.
	}
	if m.Phone == "" && m.UserID == "" {
		return Message{}, invalid("message %s has no sender: neither a wa_id nor a user_id", w.ID)
	}
	if m.Context != nil && *m.Context == (Context{}) {
		m.Context = nil
	}
	fillContent(&m, &w)
	return m, nil
}

// matchContact finds the contacts[] entry describing the message's sender:
// by wa_id, by BSUID, or, for a sender-less message in a value with a
// single contact (a BSUID-only user), that contact.
func matchContact(cs []wireContact, w *wireMessage) *wireContact {
	for i := range cs {
		c := &cs[i]
		if (c.WAID != "" && c.WAID == w.From) || (c.UserID != "" && c.UserID == w.FromUserID) {
			return c
		}
	}
	if w.From == "" && w.FromUserID == "" && len(cs) == 1 {
		return &cs[0]
	}
	return nil
}

// fillContent sets ContentType, Text and the type's own field. A message
// whose type-specific object is missing is treated as unsupported rather
// than stored empty.
func fillContent(m *Message, w *wireMessage) {
	m.ContentType = switchboard.ContentText
	switch w.Type {
	case TypeText:
		if w.Text != nil {
			m.Text = w.Text.Body
			return
		}
	case TypeImage, TypeSticker, TypeAudio, TypeVideo, TypeDocument:
		if md := mediaOf(w); md != nil && md.ID != "" {
			m.Media = &MediaRef{ID: md.ID, MimeType: md.MimeType, SHA256: md.SHA256,
				Caption: md.Caption, Filename: md.Filename, Voice: md.Voice}
			m.Text = md.Caption
			switch w.Type {
			case TypeImage, TypeSticker:
				m.ContentType = switchboard.ContentImage
			case TypeAudio:
				m.ContentType = switchboard.ContentAudio
			default:
				m.ContentType = switchboard.ContentFile
			}
			return
		}
	case TypeLocation:
		if l := w.Location; l != nil {
			lat, latOK := parseFloat(l.Latitude)
			lon, lonOK := parseFloat(l.Longitude)
			if latOK && lonOK {
				m.Location = &Location{Latitude: lat, Longitude: lon, Name: l.Name, Address: l.Address, URL: l.URL}
				m.Text = locationText(m.Location)
				return
			}
		}
	case TypeReaction:
		if r := w.Reaction; r != nil && r.MessageID != "" {
			m.Reaction = &Reaction{MessageID: r.MessageID, Emoji: r.Emoji}
			m.Text = r.Emoji
			if r.Emoji == "" {
				m.Text = "(reaction removed)"
			}
			return
		}
	case TypeInteractive:
		if r := interactiveReply(w); r != nil {
			m.Reply = r
			m.Text = r.Title
			if r.Type == "nfm_reply" {
				m.Text = "[Form response]"
				if nfm := w.Interactive.NFMReply; nfm.Body != "" {
					m.Text = nfm.Body
				}
			}
			return
		}
	case TypeButton:
		if b := w.Button; b != nil {
			m.Button = &Button{Payload: b.Payload, Text: b.Text}
			m.Text = b.Text
			return
		}
	case TypeContacts:
		if len(w.Contacts) > 0 {
			parts := make([]string, 0, len(w.Contacts))
			for _, c := range w.Contacts {
				sc := SharedContact{Name: c.Name.FormattedName}
				if sc.Name == "" {
					sc.Name = strings.TrimSpace(c.Name.FirstName + " " + c.Name.LastName)
				}
				for _, p := range c.Phones {
					if p.Phone != "" {
						sc.Phones = append(sc.Phones, p.Phone)
					}
				}
				m.Contacts = append(m.Contacts, sc)
				part := sc.Name
				if len(sc.Phones) > 0 {
					part = strings.TrimSpace(part + " (" + strings.Join(sc.Phones, ", ") + ")")
				}
				parts = append(parts, part)
			}
			m.Text = "Shared contact: " + strings.Join(parts, "; ")
			return
		}
	case TypeSystem:
		if s := w.System; s != nil {
			m.System = &System{Type: s.Type, Body: s.Body, NewWAID: s.NewWAID}
			m.Text = s.Body
			return
		}
	}
	m.Text = unsupportedText(w.Type, m.Errors)
}

func mediaOf(w *wireMessage) *wireMedia {
	switch w.Type {
	case TypeImage:
		return w.Image
	case TypeSticker:
		return w.Sticker
	case TypeAudio:
		return w.Audio
	case TypeVideo:
		return w.Video
	case TypeDocument:
		return w.Document
	}
	return nil
}

func interactiveReply(w *wireMessage) *Reply {
	in := w.Interactive
	if in == nil {
		return nil
	}
	var r *Reply
	switch in.Type {
	case "button_reply":
		r = in.ButtonReply
	case "list_reply":
		r = in.ListReply
	case "nfm_reply":
		if in.NFMReply != nil {
			return &Reply{Type: in.Type, Title: in.NFMReply.Name, ResponseJSON: in.NFMReply.ResponseJSON}
		}
	}
	if r == nil {
		return nil
	}
	return &Reply{Type: in.Type, ID: r.ID, Title: r.Title, Description: r.Description}
}

// locationText renders a pin as "📍 name, address (lat, lon)", leaving out
// what was not sent.
func locationText(l *Location) string {
	var parts []string
	for _, s := range []string{l.Name, l.Address} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	coords := "(" + strconv.FormatFloat(l.Latitude, 'f', -1, 64) + ", " + strconv.FormatFloat(l.Longitude, 'f', -1, 64) + ")"
	if len(parts) == 0 {
		return "📍 " + coords
	}
	return "📍 " + strings.Join(parts, ", ") + " " + coords
}

func unsupportedText(typ string, errs []ErrorDetail) string {
	if typ == "" {
		typ = "no type"
	}
	s := "[Unsupported WhatsApp message: " + typ + "]"
	if len(errs) > 0 && errs[0].Title != "" {
		s += " " + errs[0].Title
	}
	return s
}

func parseStatus(raw json.RawMessage, phoneNumberID string) (Status, error) {
	var w wireStatus
	if err := json.Unmarshal(raw, &w); err != nil {
		return Status{}, invalid("malformed status: %v", err)
	}
	switch {
	case strings.TrimSpace(w.ID) == "":
		return Status{}, invalid("status has no id")
	case strings.TrimSpace(w.Status) == "":
		return Status{}, invalid("status of %s has no status", w.ID)
	}
	ts, err := parseUnix(w.Timestamp)
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", w.ID, err)
	}
	return Status{
		ID: w.ID, Status: w.Status, Timestamp: ts,
		RecipientID: w.RecipientID, RecipientUserID: w.RecipientUserID,
		PhoneNumberID: phoneNumberID, Errors: errorDetails(w.Errors), Raw: raw,
	}, nil
}

func errorDetails(ws []wireError) []ErrorDetail {
	if len(ws) == 0 {
		return nil
	}
	out := make([]ErrorDetail, len(ws))
	for i, w := range ws {
		out[i] = ErrorDetail{Code: w.Code, Title: w.Title, Message: w.Message, Details: w.ErrorData.Details}
	}
	return out
}

// parseUnix reads a Cloud API timestamp: unix seconds as a string
// ("1749416383"), or, leniently, as a JSON number.
func parseUnix(raw json.RawMessage) (time.Time, error) {
	s, ok := meta.NumberText(raw)
	if !ok {
		if meta.IsNull(raw) {
			return time.Time{}, invalid("timestamp is missing")
		}
		return time.Time{}, invalid("timestamp %s is not a string or number", raw)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, invalid("timestamp %q is not unix seconds", s)
	}
	if n <= 0 || n > maxUnix {
		return time.Time{}, invalid("timestamp %d is out of range", n)
	}
	return time.Unix(n, 0).UTC(), nil
}

// parseFloat reads a coordinate sent as a JSON number or numeric string.
func parseFloat(raw json.RawMessage) (float64, bool) {
	s, ok := meta.NumberText(raw)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

func invalid(format string, args ...any) error {
	return switchboard.Errorf(switchboard.EINVALID, format, args...)
}
