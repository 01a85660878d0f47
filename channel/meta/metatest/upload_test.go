package metatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// formFile is the file part of a test upload.
type formFile struct {
	field, name, ctype string
	data               []byte
}

// postForm posts fields and files as multipart/form-data, the way the
// documented curl -F examples do, and returns the status and body.
func postForm(t *testing.T, url, auth string, fields [][2]string, files ...formFile) (int, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.field, f.name))
		h.Set("Content-Type", f.ctype)
		p, _ := mw.CreatePart(h)
		p.Write(f.data)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, url, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func postJSON(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestWhatsAppMediaUpload(t *testing.T) {
	s, base := newGraph(t)
	bearer := "Bearer " + token
	upload := base + "/v25.0/" + DefaultPhoneNumberID + "/media"
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 1000)...)

	// The documented request: -F file=@… -F type=image/png -F messaging_product=whatsapp.
	status, b := postForm(t, upload, bearer, [][2]string{{"type", "image/png"}, {"messaging_product", "whatsapp"}},
		formFile{"file", "lid.png", "image/png", png})
	var rep map[string]string
	if err := json.Unmarshal(b, &rep); status != 200 || err != nil || len(rep) != 1 || rep["id"] == "" {
		t.Fatalf("upload: %d %s", status, b)
	}
	mediaID := rep["id"]
	ups := s.Uploads()
	if len(ups) != 1 || ups[0].Product != "whatsapp" || ups[0].ID != mediaID || ups[0].Type != "image/png" ||
		ups[0].Filename != "lid.png" || !bytes.Equal(ups[0].Data, png) {
		t.Fatalf("uploads %+v", ups)
	}
	// Uploaded media reads back like inbound media.
	status, b = get(t, base+"/v25.0/"+mediaID)
	var info struct {
		MimeType string `json:"mime_type"`
		FileSize int    `json:"file_size"`
	}
	if json.Unmarshal(b, &info); status != 200 || info.MimeType != "image/png" || info.FileSize != len(png) {
		t.Errorf("media info: %d %s", status, b)
	}

	wa := base + "/v25.0/" + DefaultPhoneNumberID + "/messages"
	msg := func(kind, obj string) string {
		return `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"` + kind + `","` + kind + `":` + obj + `}`
	}
	if status, b := postJSON(t, wa, msg("image", `{"id":"`+mediaID+`","caption":"the lid"}`)); status != 200 {
		t.Fatalf("image by id: %d %s", status, b)
	}
	sends := s.WhatsAppSends()
	if len(sends) != 1 || sends[0].Type != "image" || sends[0].MediaID != mediaID || sends[0].Text != "the lid" {
		t.Errorf("sends %+v", sends)
	}
	for _, tt := range []struct{ name, body string }{
		{"unknown id", msg("image", `{"id":"123"}`)},
		{"image sent as a document", msg("document", `{"id":"`+mediaID+`","filename":"lid.png"}`)},
		{"caption on audio", msg("audio", `{"id":"`+mediaID+`","caption":"x"}`)},
		{"file name on an image", msg("image", `{"id":"`+mediaID+`","filename":"lid.png"}`)},
		{"caption too long", msg("image", `{"id":"`+mediaID+`","caption":"`+strings.Repeat("c", 1025)+`"}`)},
	} {
		status, b := postJSON(t, wa, tt.body)
		if e := meta.DecodeAPIError(status, b); status != 400 || e.Code != 100 {
			t.Errorf("%s: %d %s", tt.name, status, b)
		}
	}

	pdf := []byte("%PDF-1.7 invoice")
	for _, tt := range []struct {
		name, url, auth string
		fields          [][2]string
		files           []formFile
		status, code    int
	}{
		{"no token", upload, "", [][2]string{{"type", "application/pdf"}, {"messaging_product", "whatsapp"}}, []formFile{{"file", "a.pdf", "application/pdf", pdf}}, 401, 190},
		{"no messaging_product", upload, bearer, [][2]string{{"type", "application/pdf"}}, []formFile{{"file", "a.pdf", "application/pdf", pdf}}, 400, 100},
		{"no type", upload, bearer, [][2]string{{"messaging_product", "whatsapp"}}, []formFile{{"file", "a.pdf", "application/pdf", pdf}}, 400, 100},
		{"unsupported type", upload, bearer, [][2]string{{"type", "image/gif"}, {"messaging_product", "whatsapp"}}, []formFile{{"file", "a.gif", "image/gif", []byte("GIF89a")}}, 400, 100},
		{"no file", upload, bearer, [][2]string{{"type", "application/pdf"}, {"messaging_product", "whatsapp"}}, nil, 400, 100},
		{"file under another field", upload, bearer, [][2]string{{"type", "application/pdf"}, {"messaging_product", "whatsapp"}}, []formFile{{"filedata", "a.pdf", "application/pdf", pdf}}, 400, 100},
		{"image over 5 MB", upload, bearer, [][2]string{{"type", "image/jpeg"}, {"messaging_product", "whatsapp"}}, []formFile{{"file", "a.jpg", "image/jpeg", make([]byte, 5e6+1)}}, 400, 100},
		{"another number", base + "/v25.0/42/media", bearer, [][2]string{{"type", "application/pdf"}, {"messaging_product", "whatsapp"}}, []formFile{{"file", "a.pdf", "application/pdf", pdf}}, 400, 100},
	} {
		status, b := postForm(t, tt.url, tt.auth, tt.fields, tt.files...)
		if e := meta.DecodeAPIError(status, b); status != tt.status || e.Code != tt.code || e.FBTraceID == "" {
			t.Errorf("%s: %d %s", tt.name, status, b)
		}
	}
	if status, b := postJSON(t, upload, `{"messaging_product":"whatsapp","type":"image/png","file":"x"}`); status != 400 {
		t.Errorf("JSON upload: %d %s", status, b)
	}
	// A document of exactly 5 MB passes where an image may not.
	if status, b := postForm(t, upload, bearer, [][2]string{{"type", "application/pdf"}, {"messaging_product", "whatsapp"}},
		formFile{"file", "big.pdf", "application/pdf", make([]byte, 5e6+1)}); status != 200 {
		t.Errorf("document over 5 MB: %d %s", status, b)
	}
	if n := len(s.Uploads()); n != 2 {
		t.Errorf("%d uploads recorded, want 2", n)
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestMessengerAttachmentUpload(t *testing.T) {
	s, base := newGraph(t)
	bearer := "Bearer " + token
	upload := base + "/v25.0/" + DefaultPageID + "/message_attachments"
	png := []byte("\x89PNG\r\n\x1a\n fake")
	message := func(kind string) [2]string {
		return [2]string{"message", `{"attachment":{"type":"` + kind + `", "payload":{"is_reusable":true}}}`}
	}

	// The documented request: -F message={…} -F filedata=@/tmp/shirt.png;type=image/png.
	status, b := postForm(t, upload, bearer, [][2]string{message("image")}, formFile{"filedata", "shirt.png", "image/png", png})
	var rep map[string]string
	if err := json.Unmarshal(b, &rep); status != 200 || err != nil || len(rep) != 1 || rep["attachment_id"] == "" {
		t.Fatalf("upload: %d %s", status, b)
	}
	attID := rep["attachment_id"]
	if ups := s.Uploads(); len(ups) != 1 || ups[0].Product != "messenger" || ups[0].Type != "image" || !ups[0].Reusable ||
		ups[0].MimeType != "image/png" || !bytes.Equal(ups[0].Data, png) {
		t.Fatalf("uploads %+v", ups)
	}
	pg := base + "/v25.0/" + DefaultPageID + "/messages"
	send := func(kind, payload, text string) string {
		msg := `{"attachment":{"type":"` + kind + `","payload":` + payload + `}}`
		if text != "" {
			msg = `{"text":"` + text + `","attachment":{"type":"` + kind + `","payload":` + payload + `}}`
		}
		return `{"recipient":{"id":"6922891234567890"},"messaging_type":"RESPONSE","message":` + msg + `}`
	}
	if status, b := postJSON(t, pg, send("image", `{"attachment_id":"`+attID+`"}`, "")); status != 200 {
		t.Fatalf("send: %d %s", status, b)
	}
	sends := s.MessengerSends()
	if len(sends) != 1 || sends[0].Text != "" || sends[0].Attachment == nil || *sends[0].Attachment != (AttachmentSend{Type: "image", AttachmentID: attID}) {
		t.Fatalf("sends %+v", sends)
	}
	for _, tt := range []struct{ name, body string }{
		{"unknown id", send("image", `{"attachment_id":"1"}`, "")},
		{"another type", send("video", `{"attachment_id":"`+attID+`"}`, "")},
		{"text too", send("image", `{"attachment_id":"`+attID+`"}`, "look")},
		{"no payload id", send("image", `{}`, "")},
		{"template", send("template", `{"attachment_id":"`+attID+`"}`, "")},
	} {
		status, b := postJSON(t, pg, tt.body)
		if e := meta.DecodeAPIError(status, b); status != 400 || e.Code != 100 {
			t.Errorf("%s: %d %s", tt.name, status, b)
		}
	}

	// Instagram: platform=instagram, its own formats and limits.
	igUp := func(kind, name, ctype string, data []byte) (int, []byte) {
		return postForm(t, upload, bearer, [][2]string{{"platform", "instagram"}, message(kind)}, formFile{"filedata", name, ctype, data})
	}
	status, b = igUp("image", "lid.png", "image/png", png)
	if json.Unmarshal(b, &rep); status != 200 {
		t.Fatalf("instagram upload: %d %s", status, b)
	}
	igID := rep["attachment_id"]
	if ups := s.Uploads(); ups[len(ups)-1].Product != "instagram" {
		t.Errorf("upload %+v", ups[len(ups)-1])
	}
	if status, b := postJSON(t, pg, send("image", `{"attachment_id":"`+igID+`"}`, "")); status != 400 {
		t.Errorf("an Instagram attachment sent to a Messenger user: %d %s", status, b)
	}
	for _, tt := range []struct {
		name, kind, file, ctype string
		data                    []byte
	}{
		{"mp3", "audio", "a.mp3", "audio/mpeg", []byte("ID3")},
		{"image over 8 MB", "image", "a.jpg", "image/jpeg", make([]byte, 8e6+1)},
		{"non-ASCII name", "image", "снимок.png", "image/png", png},
		{"image as video", "video", "a.png", "image/png", png},
	} {
		status, b := igUp(tt.kind, tt.file, tt.ctype, tt.data)
		if e := meta.DecodeAPIError(status, b); status != 400 || e.Code != 100 {
			t.Errorf("instagram %s: %d %s", tt.name, status, b)
		}
	}
	for _, tt := range []struct {
		name   string
		fields [][2]string
		files  []formFile
	}{
		{"no message", nil, []formFile{{"filedata", "a.png", "image/png", png}}},
		{"bad type", [][2]string{message("sticker")}, []formFile{{"filedata", "a.png", "image/png", png}}},
		{"no file", [][2]string{message("image")}, nil},
		{"audio not typed audio", [][2]string{message("audio")}, []formFile{{"filedata", "a.mp3", "application/octet-stream", []byte("ID3")}}},
	} {
		status, b := postForm(t, upload, bearer, tt.fields, tt.files...)
		if e := meta.DecodeAPIError(status, b); status != 400 || e.Code != 100 {
			t.Errorf("%s: %d %s", tt.name, status, b)
		}
	}
	// /me/ is the Page the token belongs to.
	if status, b := postForm(t, base+"/me/message_attachments", bearer, [][2]string{message("file")},
		formFile{"filedata", "a.pdf", "application/pdf", []byte("%PDF")}); status != 200 {
		t.Errorf("/me/message_attachments: %d %s", status, b)
	}
}
