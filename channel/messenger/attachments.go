package messenger

import (
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// Attachment limits, MB read as 10^6 bytes (the smaller reading, so that
// nothing allowed here is over Meta's limit).
const (
	// MaxAttachmentBytes is Messenger's limit on one attachment
	// (https://developers.facebook.com/docs/messenger-platform/send-messages/saving-assets).
	MaxAttachmentBytes = 25_000_000
	// Instagram's limits on images and on audio and video
	// (https://developers.facebook.com/documentation/business-messaging/instagram-messaging/features/send-message).
	MaxInstagramImageBytes = 8_000_000
	MaxInstagramMediaBytes = 25_000_000
	// MaxAttachments bounds the files of one reply. It is ours, not
	// Meta's: each file is a message of its own, and all of them are
	// uploaded and sent within one outbox attempt.
	MaxAttachments = 10
)

// Attachment limits for the composer.
const (
	MessengerAttachmentLimits = "any file up to 25 MB (images, MP3/M4A/AAC audio and MP4 video play inline); one message per file"
	InstagramAttachmentLimits = "images (JPEG, PNG) up to 8 MB; audio (AAC, M4A, WAV) and video (MP4, OGG, AVI, MOV, WebM) up to 25 MB; no other files; one message per file"
)

// AttachmentLimits returns ch's attachment limits, for the composer.
func AttachmentLimits(ch switchboard.Channel) string {
	if ch == switchboard.ChannelInstagram {
		return InstagramAttachmentLimits
	}
	return MessengerAttachmentLimits
}

// OutAttachment is how a file goes out: the Send API's attachment type
// and the Content-Type its upload declares.
type OutAttachment struct {
	Type        string // AttachmentImage, AttachmentAudio, AttachmentVideo or AttachmentFile
	ContentType string
	Limit       int64
}

// messengerTypes play inline on Messenger; every other file goes as a
// file, which Messenger takes of any type. Messenger lists no formats, so
// only the common ones are sent as media.
var messengerTypes = map[string]string{
	"image/jpeg": AttachmentImage, "image/png": AttachmentImage, "image/gif": AttachmentImage,
	"audio/mpeg": AttachmentAudio, "audio/mp4": AttachmentAudio, "audio/aac": AttachmentAudio,
	"video/mp4": AttachmentVideo,
}

// instagramTypes are the formats both Instagram's send and upload pages
// list (GIF is on the upload page only, so it is left out). The upload
// page of 2026 adds PDF files, which its send page and earlier versions
// do not: Instagram takes no files here until Meta's pages agree.
var instagramTypes = map[string]OutAttachment{
	"image/jpeg":      {AttachmentImage, "image/jpeg", MaxInstagramImageBytes},
	"image/png":       {AttachmentImage, "image/png", MaxInstagramImageBytes},
	"audio/aac":       {AttachmentAudio, "audio/aac", MaxInstagramMediaBytes},
	"audio/mp4":       {AttachmentAudio, "audio/mp4", MaxInstagramMediaBytes},
	"audio/x-m4a":     {AttachmentAudio, "audio/mp4", MaxInstagramMediaBytes},
	"audio/wav":       {AttachmentAudio, "audio/wav", MaxInstagramMediaBytes},
	"audio/wave":      {AttachmentAudio, "audio/wav", MaxInstagramMediaBytes},
	"audio/x-wav":     {AttachmentAudio, "audio/wav", MaxInstagramMediaBytes},
	"video/mp4":       {AttachmentVideo, "video/mp4", MaxInstagramMediaBytes},
	"video/ogg":       {AttachmentVideo, "video/ogg", MaxInstagramMediaBytes},
	"video/avi":       {AttachmentVideo, "video/avi", MaxInstagramMediaBytes},
	"video/x-msvideo": {AttachmentVideo, "video/avi", MaxInstagramMediaBytes},
	"video/quicktime": {AttachmentVideo, "video/quicktime", MaxInstagramMediaBytes},
	"video/webm":      {AttachmentVideo, "video/webm", MaxInstagramMediaBytes},
}

// AttachmentFor says how a stored attachment goes out on ch, or why it
// cannot: an EPOLICY error naming the limit, safe to show an agent.
func AttachmentFor(ch switchboard.Channel, a switchboard.Attachment) (OutAttachment, error) {
	ct := strings.ToLower(strings.TrimSpace(a.ContentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	var out OutAttachment
	if ch == switchboard.ChannelInstagram {
		var ok bool
		if out, ok = instagramTypes[ct]; !ok {
			return OutAttachment{}, switchboard.Errorf(switchboard.EPOLICY, "Instagram cannot carry %s (%s): it takes %s", a.Name, a.ContentType, InstagramAttachmentLimits)
		}
	} else {
		out = OutAttachment{Type: AttachmentFile, ContentType: ct, Limit: MaxAttachmentBytes}
		if t, ok := messengerTypes[ct]; ok {
			out.Type = t
		}
		if out.ContentType == "" {
			out.ContentType = "application/octet-stream"
		}
	}
	if a.Size > out.Limit {
		return OutAttachment{}, attachmentTooLarge(ch, out, a.Name, a.Size)
	}
	return out, nil
}

// attachmentTooLarge is the EPOLICY error for a file over its limit.
func attachmentTooLarge(ch switchboard.Channel, out OutAttachment, name string, size int64) error {
	what := "attachments are"
	if ch == switchboard.ChannelInstagram {
		what = out.Type + " files are"
	}
	return meta.TooLarge(platformName(ch)+" "+what, out.Limit, name, size)
}

// part is one message of a reply: its text, or one attachment.
type part struct {
	text string
	att  *switchboard.Attachment
	out  OutAttachment
}

func (p part) name() string {
	if p.att == nil {
		return "the text"
	}
	return p.out.Type + " " + p.att.Name
}

// plan splits a reply into the messages the Send API sends, in order: the
// text first, then one per attachment (a message carries text or one
// attachment). Errors are EPOLICY or EINVALID, safe to show an agent.
func plan(ch switchboard.Channel, text string, atts []switchboard.Attachment) ([]part, error) {
	if len(atts) > MaxAttachments {
		return nil, switchboard.Errorf(switchboard.EPOLICY, "a %s reply carries at most %d files", platformName(ch), MaxAttachments)
	}
	var parts []part
	if strings.TrimSpace(text) != "" || len(atts) == 0 {
		if err := CheckText(ch, text); err != nil {
			return nil, err
		}
		parts = append(parts, part{text: text})
	}
	for i := range atts {
		out, err := AttachmentFor(ch, atts[i])
		if err != nil {
			return nil, err
		}
		parts = append(parts, part{att: &atts[i], out: out})
	}
	return parts, nil
}
