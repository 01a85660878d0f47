package server

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
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

// upload stores one file from a multipart form field "file" in the object
// store and records it, answering its id for a later reply to attach.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	if s.Blobs == nil {
		return switchboard.Errorf(switchboard.EINTERNAL, "no object store is configured")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxUploadBytes+1<<20) // room for the multipart framing
	mr, err := r.MultipartReader()
	if err != nil {
		return switchboard.Errorf(switchboard.EINVALID, "a multipart/form-data body with a \"file\" field is expected")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return switchboard.Errorf(switchboard.EINVALID, "no \"file\" field in the form")
		}
		if err != nil {
			return uploadReadError(err)
		}
		if part.FormName() != "file" || part.FileName() == "" {
			part.Close()
			continue
		}
		defer part.Close()
		return s.storeUpload(w, r, me, part.FileName(), part)
	}
}

func uploadReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return switchboard.Errorf(switchboard.ETOOLARGE, "files are limited to %d MB", MaxUploadBytes>>20)
	}
	return switchboard.Errorf(switchboard.EINVALID, "reading the upload: %v", err)
}

func (s *Server) storeUpload(w http.ResponseWriter, r *http.Request, me switchboard.Agent, filename string, body io.Reader) error {
	ctx := r.Context()
	br := bufio.NewReaderSize(body, 512)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return uploadReadError(err)
	}
	if len(head) == 0 {
		return switchboard.Errorf(switchboard.EINVALID, "the file is empty")
	}
	ctype, _, _ := mime.ParseMediaType(http.DetectContentType(head))
	if !uploadTypes[ctype] {
		return switchboard.Errorf(switchboard.EINVALID, "files of type %s cannot be attached", ctype)
	}
	name := cleanFileName(filename)
	var b [12]byte
	rand.Read(b[:])
	key := "uploads/" + time.Now().UTC().Format("2006/01/02") + "/" + hex.EncodeToString(b[:]) + "/" + name
	// Stream into the object store while counting, so the size limit holds
	// without buffering 25 MB in memory.
	spool := &countingReader{r: io.LimitReader(br, MaxUploadBytes+1)}
	if err := s.Blobs.Put(ctx, key, spool, -1, ctype); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return uploadReadError(err)
		}
		return err
	}
	if spool.n > MaxUploadBytes {
		s.Blobs.Delete(ctx, key)
		return switchboard.Errorf(switchboard.ETOOLARGE, "files are limited to %d MB", MaxUploadBytes>>20)
	}
	a, err := s.Store.CreateUpload(ctx, me.ID, switchboard.Attachment{Key: key, ContentType: ctype, Size: spool.n, Name: name})
	if err != nil {
		s.Blobs.Delete(ctx, key)
		return err
	}
	url, err := s.Blobs.URL(ctx, key, s.AttachmentURLTTL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, attachmentJSON{ID: a.ID, URL: url, ContentType: a.ContentType, Size: a.Size, Name: a.Name})
	return nil
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

// cleanFileName keeps a file name safe to show and to use in a key: the
// base name only, printable characters, no leading dots, at most 128 bytes.
func cleanFileName(name string) string {
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
