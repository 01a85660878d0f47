// Package blob is the object store for attachments and uploads (docs/design.md §1):
// files in a local directory served through signed URLs for one machine,
// or any S3-compatible store for several instances.
//
// Keys are slash-separated relative paths ("att/2026/01/abc/photo.jpg").
// Both implementations accept the same keys, so a deployment can move from
// one to the other without renaming anything.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// Sentinel errors. They are *switchboard.Error values, so the server maps
// them to the right status without knowing this package; test with errors.Is.
var (
	ErrNotFound   = switchboard.Errorf(switchboard.ENOTFOUND, "blob not found")
	ErrInvalidKey = switchboard.Errorf(switchboard.EINVALID, "invalid blob key")
)

// Limits shared by both stores. MaxTTL is what S3 allows for a presigned
// URL; MaxKeyLen is S3's key limit.
const (
	MaxTTL        = 7 * 24 * time.Hour
	MinTTL        = time.Second
	MaxKeyLen     = 1024
	maxSegmentLen = 255 // a file name on common file systems

	defaultContentType = "application/octet-stream"
)

// ValidateKey reports whether key can be stored: a relative slash-separated
// path with no empty, "." or ".." segments, no backslashes and no control
// characters. The error wraps ErrInvalidKey.
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("blob: key %q: %s: %w", key, why, ErrInvalidKey)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("absolute path")
	case strings.Contains(key, `\`):
		return bad("backslash")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad("control character")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return bad("empty path segment")
		case seg == "." || seg == "..":
			return bad("dot segment")
		case len(seg) > maxSegmentLen:
			return bad(fmt.Sprintf("segment longer than %d bytes", maxSegmentLen))
		}
	}
	return nil
}

// normalizeType returns the canonical form of a content type, with "" read
// as application/octet-stream; a type that does not parse is refused, since
// it would later be sent as a header.
func normalizeType(ct string) (string, error) {
	if strings.TrimSpace(ct) == "" {
		return defaultContentType, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		if out := mime.FormatMediaType(mt, params); out != "" {
			return out, nil
		}
	}
	return "", fmt.Errorf("blob: content type %q: %w", ct,
		switchboard.Errorf(switchboard.EINVALID, "invalid content type"))
}

func checkTTL(ttl time.Duration) error {
	if ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("blob: url: %w",
			switchboard.Errorf(switchboard.EINVALID, "ttl %s outside [%s, %s]", ttl, MinTTL, MaxTTL))
	}
	return nil
}

func sizeMismatch(key string, got, want int64) error {
	return fmt.Errorf("blob: put %q: %w", key,
		switchboard.Errorf(switchboard.EINVALID, "read %d bytes, size said %d", got, want))
}

// Open returns the store that rawURL names: "file:DIR" (also file:///DIR)
// for a Local store whose URLs start with baseURL and are signed with key,
// or "s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&..." for an S3 store (see
// NewS3). A Local store also needs its Handler mounted at baseURL; check
// for it with a type assertion on interface{ Handler() http.Handler }.
func Open(ctx context.Context, rawURL, baseURL string, key []byte) (switchboard.BlobStore, error) {
	scheme, _, ok := strings.Cut(rawURL, ":")
	switch {
	case rawURL == "":
		return nil, errors.New("blob: no blob URL: want file:DIR or s3://BUCKET?endpoint=HOST:PORT")
	case ok && strings.EqualFold(scheme, "file"):
		dir, err := fileDir(rawURL)
		if err != nil {
			return nil, err
		}
		return NewLocal(dir, baseURL, key)
	case ok && strings.EqualFold(scheme, "s3"):
		return NewS3(ctx, rawURL)
	case !ok:
		// Only the scheme is ever echoed: the rest may hold credentials.
		return nil, errors.New("blob: blob URL has no scheme: want file:DIR or s3://BUCKET?endpoint=HOST:PORT")
	default:
		return nil, fmt.Errorf("blob: unsupported blob URL scheme %q: want file:DIR or s3://BUCKET?endpoint=HOST:PORT", scheme)
	}
}

// fileDir accepts "file:DIR" (DIR may be relative) and "file:///abs/dir".
func fileDir(rawURL string) (string, error) {
	rest := rawURL[len("file:"):]
	if strings.HasPrefix(rest, "//") {
		u, err := url.Parse(rawURL)
		if err != nil {
			return "", fmt.Errorf("blob: file URL: %w", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("blob: file URL names host %q: only local directories are supported", u.Host)
		}
		rest = u.Path
	}
	if rest == "" {
		return "", errors.New("blob: file URL has no directory: want file:DIR")
	}
	return rest, nil
}

// ctxReader stops a long copy once ctx ends; local file writes do not watch
// a context on their own.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
