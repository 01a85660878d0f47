package metatest

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// Upload is one file an upload endpoint accepted.
type Upload struct {
	Product  string // "whatsapp", "messenger" or "instagram"
	ID       string // the media id (WhatsApp) or attachment_id (Messenger, Instagram)
	Type     string // WhatsApp: the type field, a MIME type; Messenger: image, audio, video or file
	MimeType string // the file part's Content-Type
	Filename string
	Data     []byte
	Reusable bool // Messenger and Instagram: payload.is_reusable
}

// Uploads returns the files accepted so far by POST /{phone-number-id}/media
// and POST /{page-id}/message_attachments, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

// mediaLimit is a size limit and the message type a media type goes as.
type mediaLimit struct {
	kind  string
	limit int64
}

// waUploadTypes are the Cloud API's supported media types and limits
// (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types),
// MB read as 10^6 bytes. A sticker may be 500 KB when animated, 100 KB
// when static; the stand-in does not tell them apart.
var waUploadTypes = map[string]mediaLimit{
	"audio/aac": {"audio", 16e6}, "audio/amr": {"audio", 16e6}, "audio/mpeg": {"audio", 16e6},
	"audio/mp4": {"audio", 16e6}, "audio/ogg": {"audio", 16e6},
	"text/plain": {"document", 100e6}, "application/pdf": {"document", 100e6},
	"application/vnd.ms-powerpoint": {"document", 100e6}, "application/msword": {"document", 100e6},
	"application/vnd.ms-excel": {"document", 100e6},
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   {"document", 100e6},
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": {"document", 100e6},
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         {"document", 100e6},
	"image/jpeg": {"image", 5e6}, "image/png": {"image", 5e6},
	"image/webp": {"sticker", 500e3},
	"video/mp4":  {"video", 16e6}, "video/3gpp": {"video", 16e6},
}

// igUploadTypes are Instagram's formats and limits
// (https://developers.facebook.com/documentation/business-messaging/instagram-messaging/features/attachment-upload).
var igUploadTypes = map[string]mediaLimit{
	"image/png": {"image", 8e6}, "image/jpeg": {"image", 8e6}, "image/gif": {"image", 8e6},
	"audio/aac": {"audio", 25e6}, "audio/mp4": {"audio", 25e6}, "audio/x-m4a": {"audio", 25e6},
	"audio/wav": {"audio", 25e6}, "audio/wave": {"audio", 25e6}, "audio/x-wav": {"audio", 25e6},
	"video/mp4": {"video", 25e6}, "video/ogg": {"video", 25e6}, "video/avi": {"video", 25e6},
	"video/x-msvideo": {"video", 25e6}, "video/quicktime": {"video", 25e6}, "video/webm": {"video", 25e6},
	"application/pdf": {"file", 25e6},
}

// MaxMessengerAttachment is the Messenger Platform's limit on one asset
// (https://developers.facebook.com/docs/messenger-platform/send-messages/saving-assets).
const MaxMessengerAttachment = 25e6

// maxUploadBody bounds an upload request: the largest file (a 100 MB
// document) and its form.
const maxUploadBody = 101 << 20

// form is a multipart upload: its text fields and its one file.
type form struct {
	fields    map[string]string
	field     string // the file's form field
	filename  string
	ctype     string
	data      []byte
	fileCount int
}

func readForm(w http.ResponseWriter, r *http.Request, fileField string) (*form, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return nil, errors.New("the upload must be multipart/form-data")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	f := &form{fields: map[string]string{}}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		if p.FileName() == "" {
			f.fields[p.FormName()] = string(b)
			continue
		}
		if p.FormName() != fileField {
			return nil, errors.New("unexpected file field " + strconv.Quote(p.FormName()) + ", want " + fileField)
		}
		f.fileCount++
		f.field, f.filename, f.ctype, f.data = p.FormName(), p.FileName(), p.Header.Get("Content-Type"), b
	}
}

func baseType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	return mt
}

// serveWhatsAppUpload answers POST /{phone-number-id}/media: multipart
// with file, type (a supported MIME type) and messaging_product=whatsapp,
// answered with {"id": MEDIA_ID}. The media can then be sent, and read
// back with GET /{media-id} like inbound media.
func (s *Server) serveWhatsAppUpload(w http.ResponseWriter, r *http.Request, id string) {
	if id != s.phoneNumberID {
		unknownObject(w, "post", id)
		return
	}
	f, err := readForm(w, r, "file")
	if err != nil {
		invalidParam(w, err.Error())
		return
	}
	typ := baseType(f.fields["type"])
	lim, ok := waUploadTypes[typ]
	switch {
	case f.fields["messaging_product"] != "whatsapp":
		graphError(w, http.StatusBadRequest, graphErr{
			Message: "(#100) The parameter messaging_product is required.", Type: "OAuthException", Code: 100,
		})
		return
	case f.fileCount != 1:
		invalidParam(w, "Param file is required: exactly one file")
		return
	case typ == "":
		invalidParam(w, "Param type is required")
		return
	case !ok:
		invalidParam(w, "Param type "+strconv.Quote(typ)+" is not a supported media type")
		return
	case int64(len(f.data)) > lim.limit:
		invalidParam(w, "Param file is "+strconv.Itoa(len(f.data))+" bytes; "+typ+" media may be at most "+strconv.FormatInt(lim.limit, 10))
		return
	case len(f.data) == 0:
		invalidParam(w, "Param file is empty")
		return
	}
	mediaID := s.AddMedia(f.data, typ)
	s.mu.Lock()
	s.uploads = append(s.uploads, Upload{Product: "whatsapp", ID: mediaID, Type: typ, MimeType: f.ctype, Filename: f.filename, Data: f.data})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{mediaID})
}

// msAttachment is a file the Attachment Upload API accepted.
type msAttachment struct {
	kind      string // image, audio, video, file
	instagram bool
}

// msUploadMessage is the message field of an attachment upload.
type msUploadMessage struct {
	Attachment *struct {
		Type    string `json:"type"`
		Payload *struct {
			URL        string          `json:"url"`
			IsReusable json.RawMessage `json:"is_reusable"`
		} `json:"payload"`
	} `json:"attachment"`
}

// serveMessengerUpload answers POST /{page-id}/message_attachments
// (also /me/… and the Instagram account's id) with a file: multipart with
// message={"attachment":{"type":…,"payload":{"is_reusable":true}}},
// filedata, and platform=instagram for Instagram, answered with
// {"attachment_id": ID}. Uploads from a URL (a JSON body) are not
// modelled: the stand-in fetches nothing.
func (s *Server) serveMessengerUpload(w http.ResponseWriter, r *http.Request, id string) {
	if id != s.pageID && id != s.igAccountID && id != "me" {
		unknownObject(w, "post", id)
		return
	}
	bad := func(msg string) {
		graphError(w, http.StatusBadRequest, graphErr{Message: msg, Type: "OAuthException", Code: 100})
	}
	f, err := readForm(w, r, "filedata")
	if err != nil {
		bad("(#100) Upload attachment failure: " + err.Error())
		return
	}
	instagram := id == s.igAccountID || f.fields["platform"] == "instagram"
	var msg msUploadMessage
	if err := json.Unmarshal([]byte(f.fields["message"]), &msg); err != nil || msg.Attachment == nil {
		bad("(#100) The parameter message is required: an object with an attachment")
		return
	}
	a := msg.Attachment
	reusable := false
	if a.Payload != nil {
		// Instagram's examples send "true" as a string.
		reusable = string(a.Payload.IsReusable) == "true" || string(a.Payload.IsReusable) == `"true"`
	}
	ct := baseType(f.ctype)
	switch {
	case a.Type != "image" && a.Type != "audio" && a.Type != "video" && a.Type != "file":
		bad("(#100) Param message[attachment][type] must be one of {image, audio, video, file}")
		return
	case a.Payload != nil && a.Payload.URL != "":
		bad("(#100) Upload either a url or filedata, not both")
		return
	case f.fileCount != 1 || len(f.data) == 0:
		bad("(#100) Upload attachment failure: filedata is required")
		return
	case a.Type == "audio" && !strings.HasPrefix(ct, "audio/"):
		bad("(#100) Upload attachment failure: an audio attachment's Content-Type must be audio/*")
		return
	}
	if instagram {
		lim, ok := igUploadTypes[ct]
		switch {
		case !isASCII(f.filename):
			bad("(#100) Upload attachment failure: file names must be ASCII")
			return
		case !ok || lim.kind != a.Type:
			bad("(#100) Upload attachment failure: " + strconv.Quote(ct) + " is not a supported Instagram " + a.Type + " format")
			return
		case int64(len(f.data)) > lim.limit:
			bad("(#100) Upload attachment failure: Instagram " + a.Type + " attachments may be at most " + strconv.FormatInt(lim.limit, 10) + " bytes")
			return
		}
	} else if len(f.data) > MaxMessengerAttachment {
		bad("(#100) Upload attachment failure: attachments may be at most 25MB")
		return
	}
	product := "messenger"
	if instagram {
		product = "instagram"
	}
	s.mu.Lock()
	var attID string
	for {
		attID = randomDigits(16)
		if _, taken := s.attachments[attID]; !taken {
			break
		}
	}
	s.attachments[attID] = &msAttachment{kind: a.Type, instagram: instagram}
	s.uploads = append(s.uploads, Upload{Product: product, ID: attID, Type: a.Type, MimeType: f.ctype, Filename: f.filename, Data: f.data, Reusable: reusable})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		AttachmentID string `json:"attachment_id"`
	}{attID})
}

func isASCII(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII {
			return false
		}
	}
	return true
}

// unknownObject is Graph's answer to a path naming an object it does not
// have (or this token may not use).
func unknownObject(w http.ResponseWriter, method, id string) {
	graphError(w, http.StatusBadRequest, graphErr{
		Message: "Unsupported " + method + " request. Object with ID '" + id + "' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
		Type:    "GraphMethodException", Code: 100, Subcode: 33,
	})
}
