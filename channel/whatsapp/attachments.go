package whatsapp

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// Media limits of the Cloud API, per message type, from
// https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types.
// Meta writes "5 MB": it is read as 5,000,000 bytes, the smaller reading,
// so that nothing allowed here is over Meta's limit.
const (
	MaxImageBytes    = 5_000_000
	MaxAudioBytes    = 16_000_000
	MaxVideoBytes    = 16_000_000
	MaxDocumentBytes = 100_000_000
	// MaxCaptionLen is the caption limit of image, video and document
	// messages, in characters
	// (https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/image-messages).
	MaxCaptionLen = 1024
	// MaxAttachments bounds the files of one reply. It is ours, not
	// Meta's: each file is a message of its own, and all of them are
	// uploaded and sent within one outbox attempt.
	MaxAttachments = 10
)

// AttachmentLimits says, for the composer, what an attachment may be.
const AttachmentLimits = "images (JPEG, PNG) up to 5 MB; audio (AAC, AMR, MP3, M4A) and video (MP4, 3GP) up to 16 MB; " +
	"documents (PDF, text, Word, Excel, PowerPoint) up to 100 MB; one message per file"

// OutMedia is how an attachment goes out on WhatsApp: the message type,
// the MIME type its upload declares, and that type's size limit.
type OutMedia struct {
	Type     string // TypeImage, TypeAudio, TypeVideo or TypeDocument
	MimeType string
	Limit    int64
}

// outTypes are the MIME types of the supported-media table that an
// upload's sniffed type can be. Left out on purpose: audio/ogg (Meta takes
// only the Opus codec, which the type does not tell), and image/webp,
// which WhatsApp takes only as a 512×512 sticker of at most 100 KB, not
// something a reply's picture can be checked to be. Video must be H.264
// with AAC audio, which cannot be checked either: Meta reports another
// codec as a failed status.
var outTypes = map[string]OutMedia{
	"image/jpeg": {TypeImage, "image/jpeg", MaxImageBytes},
	"image/png":  {TypeImage, "image/png", MaxImageBytes},
	"audio/aac":  {TypeAudio, "audio/aac", MaxAudioBytes},
	"audio/amr":  {TypeAudio, "audio/amr", MaxAudioBytes},
	"audio/mpeg": {TypeAudio, "audio/mpeg", MaxAudioBytes},
	"audio/mp4":  {TypeAudio, "audio/mp4", MaxAudioBytes},
	"video/mp4":  {TypeVideo, "video/mp4", MaxVideoBytes},
	"video/3gpp": {TypeVideo, "video/3gpp", MaxVideoBytes},
	"video/3gp":  {TypeVideo, "video/3gpp", MaxVideoBytes},

	"application/pdf":               {TypeDocument, "application/pdf", MaxDocumentBytes},
	"text/plain":                    {TypeDocument, "text/plain", MaxDocumentBytes},
	"application/msword":            {TypeDocument, "application/msword", MaxDocumentBytes},
	"application/vnd.ms-excel":      {TypeDocument, "application/vnd.ms-excel", MaxDocumentBytes},
	"application/vnd.ms-powerpoint": {TypeDocument, "application/vnd.ms-powerpoint", MaxDocumentBytes},
	ooxml[".docx"]:                  {TypeDocument, ooxml[".docx"], MaxDocumentBytes},
	ooxml[".xlsx"]:                  {TypeDocument, ooxml[".xlsx"], MaxDocumentBytes},
	ooxml[".pptx"]:                  {TypeDocument, ooxml[".pptx"], MaxDocumentBytes},
}

// ooxml are Office documents' types by extension: their bytes sniff as
// application/zip, so the name tells them from other zip files.
var ooxml = map[string]string{
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}

// MediaFor says how a stored attachment goes out on WhatsApp, or why it
// cannot: an EPOLICY error naming the limit, safe to show an agent.
func MediaFor(a switchboard.Attachment) (OutMedia, error) {
	ct := strings.ToLower(strings.TrimSpace(a.ContentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	sniffed := ct
	if ct == "application/zip" {
		ct = ooxml[strings.ToLower(path.Ext(a.Name))]
	}
	om, ok := outTypes[ct]
	switch {
	case !ok && sniffed == "image/webp":
		return OutMedia{}, switchboard.Errorf(switchboard.EPOLICY, "WhatsApp cannot carry %s: it takes WebP only as a sticker, which replies do not send; send a JPEG or PNG", a.Name)
	case !ok:
		return OutMedia{}, switchboard.Errorf(switchboard.EPOLICY, "WhatsApp cannot carry %s (%s): it takes %s", a.Name, a.ContentType, AttachmentLimits)
	case a.Size > om.Limit:
		return OutMedia{}, mediaTooLarge(om, a.Name, a.Size)
	}
	return om, nil
}

// mediaTooLarge is the EPOLICY error for a file over its type's limit.
func mediaTooLarge(om OutMedia, name string, size int64) error {
	return meta.TooLarge("WhatsApp "+om.Type+" files are", om.Limit, name, size)
}

// part is one message of a reply: its text alone, or one attachment with
// the text as its caption when it fits.
type part struct {
	text    string
	att     *switchboard.Attachment
	media   OutMedia
	caption string
}

// name says what the part is, for the composer and for errors.
func (p part) name() string {
	switch {
	case p.att == nil:
		return "the text"
	case p.caption != "":
		return fmt.Sprintf("%s %s with the text as its caption", p.media.Type, p.att.Name)
	}
	return fmt.Sprintf("%s %s", p.media.Type, p.att.Name)
}

// plan splits a reply into the messages WhatsApp sends, in order: the
// text is the first attachment's caption where it may be one (an image,
// video or document, and at most MaxCaptionLen characters), else a
// message of its own ahead of the files. Errors are EPOLICY or EINVALID,
// safe to show an agent.
func plan(text string, atts []switchboard.Attachment) ([]part, error) {
	if len(atts) > MaxAttachments {
		return nil, switchboard.Errorf(switchboard.EPOLICY, "a WhatsApp reply carries at most %d files", MaxAttachments)
	}
	parts := make([]part, 0, len(atts)+1)
	for i := range atts {
		om, err := MediaFor(atts[i])
		if err != nil {
			return nil, err
		}
		parts = append(parts, part{att: &atts[i], media: om})
	}
	switch n := utf8.RuneCountInString(text); {
	case strings.TrimSpace(text) == "" && len(parts) == 0:
		return nil, switchboard.Errorf(switchboard.EINVALID, "the message is empty")
	case strings.TrimSpace(text) == "":
	case len(parts) > 0 && parts[0].media.Type != TypeAudio && n <= MaxCaptionLen:
		parts[0].caption = text
	case n > MaxTextLen:
		return nil, switchboard.Errorf(switchboard.EPOLICY, "WhatsApp text is limited to %d characters", MaxTextLen)
	default:
		parts = append([]part{{text: text}}, parts...)
	}
	return parts, nil
}
