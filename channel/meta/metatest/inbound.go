package metatest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// WhatsAppText builds the webhook of a text message from the WhatsApp user
// from (wa_id digits, no +) named name, to the configured business number,
// as research/channels.md §9 shows it. The message reopens the user's
// 24-hour window.
func (s *Server) WhatsAppText(url, from, name, text string) (wamid string, wh Webhook, err error) {
	if !digitsOnly(from) {
		return "", Webhook{}, fmt.Errorf("metatest: wa_id %q is not digits", from)
	}
	wamid = newWAMID()
	return wamid, s.waInbound(url, from, name, waMessage{
		ID: wamid, Type: "text", Text: &waText{Body: text},
	}), nil
}

// WhatsAppMedia stores data with AddMedia (so MediaClient.Fetch can copy
// it) and builds the webhook of a media message of kind image, audio,
// video, document or sticker. caption is ignored for audio and sticker,
// which have none; a document gets a filename from its MIME type; audio
// in audio/ogg is a voice note.
func (s *Server) WhatsAppMedia(url, from, name, kind string, data []byte, mimeType, caption string) (wamid, mediaID string, wh Webhook, err error) {
	if !digitsOnly(from) {
		return "", "", Webhook{}, fmt.Errorf("metatest: wa_id %q is not digits", from)
	}
	mimeType = strings.TrimSpace(mimeType)
	if mimeType == "" {
		return "", "", Webhook{}, fmt.Errorf("metatest: media needs a MIME type")
	}
	sum := sha256.Sum256(data)
	md := &waMedia{MimeType: mimeType, SHA256: base64.StdEncoding.EncodeToString(sum[:])}
	msg := waMessage{Type: kind}
	switch kind {
	case "image":
		md.Caption, msg.Image = caption, md
	case "video":
		md.Caption, msg.Video = caption, md
	case "audio":
		md.Voice = strings.HasPrefix(mimeType, "audio/ogg")
		msg.Audio = md
	case "sticker":
		animated := false
		md.Animated = &animated
		msg.Sticker = md
	case "document":
		md.Caption, md.Filename = caption, "document"
		if exts, _ := mime.ExtensionsByType(mimeType); len(exts) > 0 {
			md.Filename += exts[0]
		}
		msg.Document = md
	default:
		return "", "", Webhook{}, fmt.Errorf("metatest: media kind %q is not image, audio, video, document or sticker", kind)
	}
	md.ID = s.AddMedia(data, mimeType)
	msg.ID = newWAMID()
	return msg.ID, md.ID, s.waInbound(url, from, name, msg), nil
}

func (s *Server) waInbound(url, from, name string, msg waMessage) Webhook {
	s.mu.Lock()
	delete(s.waClosed, from)
	s.mu.Unlock()
	msg.From = from
	msg.Timestamp = strconv.FormatInt(s.now().Unix(), 10)
	c := waContact{WAID: from}
	c.Profile.Name = name
	return s.waWebhook(url, waValue{Contacts: []waContact{c}, Messages: []waMessage{msg}})
}

// MessengerText builds the webhook of a Messenger text from the user psid
// to the configured Page (object "page"). The message reopens the user's
// 24-hour window.
func (s *Server) MessengerText(url, psid, text string) (mid string, wh Webhook) {
	mid = newMID()
	s.mu.Lock()
	delete(s.msClosed, psid)
	s.mu.Unlock()
	return mid, s.msWebhook(url, meta.ObjectPage, s.pageID, msEvent{
		Sender: msID{psid}, Recipient: msID{s.pageID}, Timestamp: s.now().UnixMilli(),
		Message: &msMessage{MID: mid, Text: text},
	})
}

// InstagramText builds the webhook of an Instagram direct message from
// igsid to the configured Instagram account (object "instagram"). Replies
// to igsid are then treated as Instagram sends.
func (s *Server) InstagramText(url, igsid, text string) (mid string, wh Webhook) {
	mid = newIGMID()
	s.mu.Lock()
	delete(s.msClosed, igsid)
	s.igUsers[igsid] = true
	s.mu.Unlock()
	return mid, s.msWebhook(url, meta.ObjectInstagram, s.igAccountID, msEvent{
		Sender: msID{igsid}, Recipient: msID{s.igAccountID}, Timestamp: s.now().UnixMilli(),
		Message: &msMessage{MID: mid, Text: text},
	})
}

// SendWhatsAppText builds a WhatsAppText webhook and posts it to url with
// client (nil: http.DefaultClient).
func (s *Server) SendWhatsAppText(ctx context.Context, client *http.Client, url, from, name, text string) (wamid string, resp *http.Response, err error) {
	wamid, wh, err := s.WhatsAppText(url, from, name, text)
	if err != nil {
		return "", nil, err
	}
	resp, err = Send(ctx, client, wh)
	return wamid, resp, err
}

// SendWhatsAppMedia builds a WhatsAppMedia webhook and posts it.
func (s *Server) SendWhatsAppMedia(ctx context.Context, client *http.Client, url, from, name, kind string, data []byte, mimeType, caption string) (wamid, mediaID string, resp *http.Response, err error) {
	wamid, mediaID, wh, err := s.WhatsAppMedia(url, from, name, kind, data, mimeType, caption)
	if err != nil {
		return "", "", nil, err
	}
	resp, err = Send(ctx, client, wh)
	return wamid, mediaID, resp, err
}

// SendMessengerText builds a MessengerText webhook and posts it.
func (s *Server) SendMessengerText(ctx context.Context, client *http.Client, url, psid, text string) (mid string, resp *http.Response, err error) {
	mid, wh := s.MessengerText(url, psid, text)
	resp, err = Send(ctx, client, wh)
	return mid, resp, err
}

// SendInstagramText builds an InstagramText webhook and posts it.
func (s *Server) SendInstagramText(ctx context.Context, client *http.Client, url, igsid, text string) (mid string, resp *http.Response, err error) {
	mid, wh := s.InstagramText(url, igsid, text)
	resp, err = Send(ctx, client, wh)
	return mid, resp, err
}
