package meta

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
)

func TestUploadStreamsMultipart(t *testing.T) {
	data := bytes.Repeat([]byte("\x89PNG"), 50000)
	type got struct {
		length   int64
		chunked  bool
		auth     string
		fields   map[string]string
		field    string
		filename string
		ctype    string
		data     []byte
	}
	seen := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := got{length: r.ContentLength, chunked: len(r.TransferEncoding) > 0, auth: r.Header.Get("Authorization"), fields: map[string]string{}}
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			if p.FileName() == "" {
				g.fields[p.FormName()] = string(b)
				continue
			}
			g.field, g.filename, g.ctype, g.data = p.FormName(), p.FileName(), p.Header.Get("Content-Type"), b
		}
		seen <- g
		io.WriteString(w, `{"id":"4490709327384033"}`)
	}))
	defer srv.Close()
	var out struct{ ID string }
	err := Upload(context.Background(), srv.Client(), srv.URL+"/v25.0/106540352242922/media", "tok",
		[][2]string{{"messaging_product", "whatsapp"}, {"type", "image/png"}},
		File{Field: "file", Name: "Löwe \"1\".png", ContentType: "image/png", Body: bytes.NewReader(data), Size: int64(len(data))}, &out)
	if err != nil || out.ID != "4490709327384033" {
		t.Fatalf("Upload = %+v, %v", out, err)
	}
	g := <-seen
	if g.chunked || g.length <= int64(len(data)) || g.auth != "Bearer tok" {
		t.Errorf("request: length %d chunked %v auth %q", g.length, g.chunked, g.auth)
	}
	if g.fields["messaging_product"] != "whatsapp" || g.fields["type"] != "image/png" || len(g.fields) != 2 {
		t.Errorf("fields %v", g.fields)
	}
	if g.field != "file" || g.filename != "L_we _1_.png" || g.ctype != "image/png" || !bytes.Equal(g.data, data) {
		t.Errorf("file part %q %q %q, %d bytes", g.field, g.filename, g.ctype, len(g.data))
	}
}

func TestUploadSizeMismatchAndErrors(t *testing.T) {
	// A request cut short by a size mismatch may still be in this handler
	// when the next one arrives: it keeps no state.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"message":"(#100) Param file must be a file with one of the following types","type":"OAuthException","code":100,"fbtrace_id":"A1"}}`)
	}))
	defer srv.Close()
	up := func(body string, size int64) error {
		return Upload(context.Background(), srv.Client(), srv.URL, "tok", nil,
			File{Field: "filedata", Name: "a.pdf", ContentType: "application/pdf", Body: strings.NewReader(body), Size: size}, nil)
	}
	for _, tt := range []struct {
		body string
		size int64
		msg  string
	}{
		{"abc", 5, "2 bytes shorter"},
		{"abcdef", 5, "longer than its recorded size"},
	} {
		if err := up(tt.body, tt.size); err == nil || !strings.Contains(err.Error(), tt.msg) || switchboard.IsPermanent(err) {
			t.Errorf("%q as %d bytes: %v", tt.body, tt.size, err)
		}
	}
	err := up("abc", 3)
	if e, ok := AsAPIError(err); !ok || e.Code != 100 || !switchboard.IsPermanent(err) {
		t.Errorf("refused upload: %v", err)
	}
}

func TestUploadName(t *testing.T) {
	for in, want := range map[string]string{
		"invoice.pdf": "invoice.pdf", "снимок.jpg": "______.jpg", `a"b\c.txt`: "a_b_c.txt", "": "file", "日本": "file", "tab\tname": "tab_name",
	} {
		if got := UploadName(in); got != want {
			t.Errorf("UploadName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSendParts(t *testing.T) {
	defer func(d []time.Duration) { partRetries = d }(partRetries)
	partRetries = []time.Duration{time.Millisecond, time.Millisecond}
	ctx := context.Background()
	transient := errors.New("graph api: HTTP 500")
	names := []string{"the text", "a.png", "b.pdf"}
	script := func(results map[int][]error) (func(context.Context, int) (string, error), *[]int) {
		var calls []int
		return func(_ context.Context, i int) (string, error) {
			calls = append(calls, i)
			if errs := results[i]; len(errs) > 0 {
				results[i] = errs[1:]
				if errs[0] != nil {
					return "", errs[0]
				}
			}
			return "id" + string(rune('0'+i)), nil
		}, &calls
	}

	send, calls := script(nil)
	if id, err := SendParts(ctx, names, send); err != nil || id != "id0" || len(*calls) != 3 {
		t.Fatalf("all sent: %q %v %v", id, err, *calls)
	}
	// Nothing sent yet: the error is the outbox's to retry.
	send, calls = script(map[int][]error{0: {transient}})
	if _, err := SendParts(ctx, names, send); !errors.Is(err, transient) || switchboard.IsPermanent(err) || len(*calls) != 1 {
		t.Fatalf("first part failed: %v %v", err, *calls)
	}
	// A later part that fails once is tried again.
	send, calls = script(map[int][]error{1: {transient}})
	if id, err := SendParts(ctx, names, send); err != nil || id != "id0" || len(*calls) != 4 {
		t.Fatalf("retried part: %q %v %v", id, err, *calls)
	}
	// One that keeps failing, or fails for good, fails the reply for good.
	send, calls = script(map[int][]error{2: {transient, transient, transient}})
	_, err := SendParts(ctx, names, send)
	if !switchboard.IsPermanent(err) || !errors.Is(err, transient) || !strings.Contains(err.Error(), "2 of 3 parts were sent (the first as id0), then b.pdf failed") || len(*calls) != 5 {
		t.Fatalf("part failing: %v %v", err, *calls)
	}
	send, calls = script(map[int][]error{1: {switchboard.Permanent(transient)}})
	if _, err := SendParts(ctx, names, send); !switchboard.IsPermanent(err) || len(*calls) != 2 {
		t.Fatalf("permanent failure: %v %v", err, *calls)
	}
}

func TestOpenAttachment(t *testing.T) {
	ctx := context.Background()
	if _, _, err := OpenAttachment(ctx, nil, switchboard.Attachment{Name: "a"}); !switchboard.IsPermanent(err) {
		t.Errorf("no store: %v", err)
	}
	store, err := blob.NewLocal(t.TempDir(), "", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenAttachment(ctx, store, switchboard.Attachment{Key: "uploads/gone.png", Name: "gone.png"}); !switchboard.IsPermanent(err) || !strings.Contains(err.Error(), "gone.png") {
		t.Errorf("missing object: %v", err)
	}
	store.Put(ctx, "uploads/a.txt", strings.NewReader("hello"), 5, "text/plain")
	rc, size, err := OpenAttachment(ctx, store, switchboard.Attachment{Key: "uploads/a.txt", Size: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); size != 5 || string(b) != "hello" {
		t.Errorf("opened %d bytes: %q", size, b)
	}
}
