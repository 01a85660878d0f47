package meta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"time"
	"unicode"

	"github.com/switchboard-inbox/switchboard"
)

// File is the file part of a multipart upload.
type File struct {
	Field       string // the form field: "file" (WhatsApp), "filedata" (Messenger)
	Name        string // sent as the part's filename, made ASCII (see UploadName)
	ContentType string
	Body        io.Reader
	Size        int64 // exactly how many bytes Body yields
}

// Upload posts fields, then file, as multipart/form-data with a bearer
// token and decodes a 2xx reply into out; errors are Call's. The file is
// streamed with an exact Content-Length rather than buffered (up to 25 MB
// per attachment) or sent chunked: a Body that yields another number of
// bytes than Size fails the request.
func Upload(ctx context.Context, hc *http.Client, endpoint, token string, fields [][2]string, file File, out any) error {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return switchboard.Permanent(fmt.Errorf("graph api: upload form: %w", err))
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": file.Field, "filename": UploadName(file.Name)}))
	h.Set("Content-Type", file.ContentType)
	if _, err := mw.CreatePart(h); err != nil {
		return switchboard.Permanent(fmt.Errorf("graph api: upload form: %w", err))
	}
	n := head.Len()
	mw.Close() // writes the closing boundary after the part's header
	prefix, tail := head.Bytes()[:n], head.Bytes()[n:]
	body := io.MultiReader(bytes.NewReader(prefix), &exactReader{r: file.Body, left: file.Size}, bytes.NewReader(tail))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, body)
	if err != nil {
		return switchboard.Permanent(fmt.Errorf("graph api: %w", err))
	}
	req.ContentLength = int64(len(prefix)) + file.Size + int64(len(tail))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return do(hc, req, token, out)
}

// UploadName is name as a multipart filename Graph accepts: printable
// ASCII without quotes or backslashes (Instagram refuses non-ASCII names,
// https://developers.facebook.com/documentation/business-messaging/instagram-messaging/features/attachment-upload),
// "file" when nothing is left.
func UploadName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r > unicode.MaxASCII, r < 0x20, r == 0x7f, r == '"', r == '\\':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	if strings.Trim(b.String(), "_. ") == "" {
		return "file"
	}
	return b.String()
}

// exactReader yields exactly left bytes of r, failing when r has fewer or
// more: the request's Content-Length was computed from the recorded size.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		var one [1]byte
		if _, err := io.ReadAtLeast(e.r, one[:], 1); err == nil {
			return 0, errors.New("graph api: upload: the file is longer than its recorded size")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if e.left > 0 {
			return n, fmt.Errorf("graph api: upload: the file is %d bytes shorter than its recorded size", e.left)
		}
		err = nil
	}
	return n, err
}

// OpenAttachment opens a stored attachment for upload: its bytes and
// their size (the object's own, else the recorded one). A missing object
// is permanent: retrying cannot bring it back.
func OpenAttachment(ctx context.Context, blobs switchboard.BlobStore, a switchboard.Attachment) (io.ReadCloser, int64, error) {
	if blobs == nil {
		return nil, 0, switchboard.Permanent(fmt.Errorf("attachment %s: no object store is configured", a.Name))
	}
	rc, info, err := blobs.Get(ctx, a.Key)
	if err != nil {
		err = fmt.Errorf("attachment %s: %w", a.Name, err)
		if switchboard.ErrorCode(err) == switchboard.ENOTFOUND {
			return nil, 0, switchboard.Permanent(err)
		}
		return nil, 0, err
	}
	size := info.Size
	if size <= 0 {
		size = a.Size
	}
	return rc, size, nil
}

// partRetries are the pauses before sending a later part of a reply again
// after a transient failure (a rate limit, a 5xx).
var partRetries = []time.Duration{time.Second, 3 * time.Second}

// SendParts makes the sends of one reply (its text, then one per
// attachment: Meta's messages carry one attachment each) in order, and
// returns the first send's id, which the reply keeps. Only that id's
// statuses move the reply: Messenger's delivery and read watermarks
// cover the later parts too, but WhatsApp's statuses and Instagram's
// reads naming a later part are kept as reports for an unknown id.
//
// The outbox retries a whole Send, so a failure is only returned as it is
// while nothing was sent. Once the first part went out, a later part that
// fails transiently is tried again here a few times; if it still fails,
// or fails for good, the error is permanent and says what was sent:
// retrying the reply would send the earlier parts twice.
func SendParts(ctx context.Context, names []string, send func(ctx context.Context, i int) (string, error)) (string, error) {
	var first string
	for i := range names {
		id, err := send(ctx, i)
		for _, pause := range partRetries {
			if err == nil || i == 0 || switchboard.IsPermanent(err) {
				break
			}
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
				id, err = send(ctx, i)
			}
			if ctx.Err() != nil {
				break
			}
		}
		switch {
		case err != nil && i == 0:
			return "", err
		case err != nil:
			return "", switchboard.Permanent(fmt.Errorf("%d of %d parts were sent (the first as %s), then %s failed; neither it nor the rest is retried, which would send the first parts twice: %w",
				i, len(names), first, names[i], err))
		case i == 0:
			first = id
		}
	}
	return first, nil
}

// TooLarge is the EPOLICY error for a file over a Graph API limit, worded
// as Meta words limits: "WhatsApp image files are limited to 5 MB; a.png
// is 6.2 MB". what names the platform and the kind of file.
func TooLarge(what string, limit int64, name string, size int64) error {
	// A size that megabytes would round to the limit is given in bytes.
	over := megabytes(size)
	if over == megabytes(limit) {
		over = fmt.Sprintf("%d bytes", size)
	}
	return switchboard.Errorf(switchboard.EPOLICY, "%s limited to %s; %s is %s", what, megabytes(limit), name, over)
}

// megabytes formats n bytes as Meta writes limits: 5 MB, 16 MB, 6.2 MB.
func megabytes(n int64) string {
	s := fmt.Sprintf("%.1f", float64(n)/1e6)
	return strings.TrimSuffix(s, ".0") + " MB"
}
