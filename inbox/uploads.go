package inbox

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/view"
)

// MaxUploadBytes is the largest file an agent may attach: e-mail's 25 MB,
// the most generous channel.
const MaxUploadBytes = 25 << 20

// uploadTypes are the content types accepted, as sniffed from the bytes
// (never as the browser claims). Anything a browser could run as script in
// our origin (HTML, SVG, XML, JavaScript) is left out.
var uploadTypes = map[string]bool{
	"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true, "image/bmp": true,
	"application/pdf": true, "text/plain": true, "text/csv": true,
	"audio/mpeg": true, "audio/ogg": true, "audio/wave": true, "audio/wav": true, "audio/aiff": true, "audio/midi": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/avi": true,
	// Office documents (OOXML) sniff as zip.
	"application/zip": true, "application/x-gzip": true,
}

// Upload stores a file an agent will attach to a reply: its type sniffed
// from its bytes and checked, its size limited, its name cleaned. The file
// belongs to the actor: only they may attach it.
func (s *Service) Upload(ctx context.Context, actor switchboard.Actor, filename string, body io.Reader) (view.Attachment, error) {
	if actor.IsSystem() || actor.ID == "" {
		return view.Attachment{}, switchboard.Errorf(switchboard.EFORBIDDEN, "uploads are an agent's")
	}
	return s.upload(ctx, filename, body, func(a switchboard.Attachment) (switchboard.Attachment, error) {
		return s.store.CreateUpload(ctx, actor.ID, a)
	})
}

// upload stores a file under the upload rules every uploader shares (the
// agents' and the live-chat visitors'): the type sniffed from the bytes
// and one of uploadTypes, at most MaxUploadBytes, the name cleaned. record
// keeps it for its owner; the object is deleted when that fails.
func (s *Service) upload(ctx context.Context, filename string, body io.Reader, record func(switchboard.Attachment) (switchboard.Attachment, error)) (view.Attachment, error) {
	if s.blobs == nil {
		return view.Attachment{}, switchboard.Errorf(switchboard.EINTERNAL, "no object store is configured")
	}
	br := bufio.NewReaderSize(body, 512)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return view.Attachment{}, UploadReadError(err)
	}
	if len(head) == 0 {
		return view.Attachment{}, switchboard.Errorf(switchboard.EINVALID, "the file is empty")
	}
	ctype, _, _ := mime.ParseMediaType(http.DetectContentType(head))
	if !uploadTypes[ctype] {
		return view.Attachment{}, switchboard.Errorf(switchboard.EINVALID, "files of type %s cannot be attached", ctype)
	}
	name := CleanFileName(filename)
	var b [12]byte
	rand.Read(b[:])
	key := "uploads/" + s.clock.Now().Format("2006/01/02") + "/" + hex.EncodeToString(b[:]) + "/" + name
	// Stream into the object store while counting, so the size limit holds
	// without buffering 25 MB in memory.
	spool := &countingReader{r: io.LimitReader(br, MaxUploadBytes+1)}
	if err := s.blobs.Put(ctx, key, spool, -1, ctype); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return view.Attachment{}, UploadReadError(err)
		}
		return view.Attachment{}, err
	}
	if spool.n > MaxUploadBytes {
		s.blobs.Delete(ctx, key)
		return view.Attachment{}, switchboard.Errorf(switchboard.ETOOLARGE, "files are limited to %d MB", MaxUploadBytes>>20)
	}
	a, err := record(switchboard.Attachment{Key: key, ContentType: ctype, Size: spool.n, Name: name})
	if err != nil {
		s.blobs.Delete(ctx, key)
		return view.Attachment{}, err
	}
	url, err := s.sign(ctx, key)
	if err != nil {
		return view.Attachment{}, err
	}
	return view.Attachment{ID: a.ID, URL: url, ContentType: a.ContentType, Size: a.Size, Name: a.Name}, nil
}

// uploads returns the actor's uploads named by ids.
func (s *Service) uploads(ctx context.Context, actor switchboard.Actor, ids []string) ([]switchboard.Attachment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.store.Uploads(ctx, actor.ID, ids)
}

// UploadReadError is the error for an upload body that could not be read.
func UploadReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return switchboard.Errorf(switchboard.ETOOLARGE, "files are limited to %d MB", MaxUploadBytes>>20)
	}
	return switchboard.Errorf(switchboard.EINVALID, "reading the upload: %v", err)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// CleanFileName keeps a file name safe to show and to use in a key: the
// base name only, printable characters, no leading dots, at most 128 bytes.
func CleanFileName(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError, !unicode.IsPrint(r), strings.ContainsRune(`/\:*?"<>|%#`, r):
			b.WriteRune('_')
		default:
			b.WriteRune(r)
		}
	}
	out := strings.TrimLeft(strings.TrimSpace(b.String()), ".")
	for len(out) > 128 {
		_, size := utf8.DecodeLastRuneInString(out)
		out = out[:len(out)-size]
	}
	if out == "" {
		out = "file"
	}
	return out
}
