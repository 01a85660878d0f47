package blob

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// MinSigningKeyLen is the shortest HMAC key NewLocal accepts.
const MinSigningKeyLen = 16

// Layout under the store's directory. Content types live in a parallel tree
// rather than beside each object so that no key can collide with a sidecar,
// and temporary files live outside both so that a crash leaves nothing
// under a key.
const (
	objectsDir = "objects"
	typesDir   = "types"
	tmpDir     = "tmp"

	// staleTmp is how old a temporary file must be before NewLocal removes
	// it: older than any upload in progress in another process sharing dir.
	staleTmp = 24 * time.Hour
)

// Local keeps objects as files under one directory and serves them through
// Handler at URLs signed with HMAC-SHA256.
type Local struct {
	dir     string
	root    *os.Root // every file operation goes through it, so nothing escapes dir
	baseURL string
	key     []byte
	now     func() time.Time // tests move the clock
}

var _ switchboard.BlobStore = (*Local)(nil)

// NewLocal opens (creating if needed) a store under dir. URL returns
// baseURL+"/blobs/KEY?exp=..&sig=..", signed with key (at least
// MinSigningKeyLen bytes); baseURL may be empty for same-origin relative
// URLs. Mount Handler so that it sees those paths.
func NewLocal(dir, baseURL string, key []byte) (*Local, error) {
	if dir == "" {
		return nil, errors.New("blob: local store: no directory")
	}
	if len(key) < MinSigningKeyLen {
		return nil, fmt.Errorf("blob: local store: signing key has %d bytes, want at least %d", len(key), MinSigningKeyLen)
	}
	baseURL = strings.TrimRight(baseURL, "/")
	if baseURL != "" {
		u, err := url.Parse(baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("blob: local store: base URL %q: want http(s)://host[/path]", baseURL)
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("blob: local store: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: local store: %w", err)
	}
	for _, sub := range []string{objectsDir, typesDir, tmpDir} {
		if err := root.Mkdir(sub, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			_ = root.Close()
			return nil, fmt.Errorf("blob: local store %s: %w", dir, err)
		}
	}
	l := &Local{dir: dir, root: root, baseURL: baseURL, key: append([]byte(nil), key...), now: time.Now}
	l.removeStaleTemps()
	return l, nil
}

// removeStaleTemps deletes what crashed uploads left; best effort, since a
// leftover only costs disk space.
func (l *Local) removeStaleTemps() {
	entries, err := fs.ReadDir(l.root.FS(), tmpDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && l.now().Sub(info.ModTime()) > staleTmp {
			_ = l.root.Remove(path.Join(tmpDir, e.Name()))
		}
	}
}

// Close releases the directory handle.
func (l *Local) Close() error { return l.root.Close() }

// Put stores r under key. The content goes to a temporary file that is
// synced and then renamed into place, so a reader (or a crash) sees the old
// object or the new one, never part of one. If size >= 0, r must hold
// exactly size bytes.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	ct, err := normalizeType(contentType)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}

	dataTmp, n, err := l.writeTemp(ctxReader{ctx, r}, size)
	// Removing a temp file that was renamed away fails harmlessly.
	defer func() { _ = l.root.Remove(dataTmp) }()
	if err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	if size >= 0 && n != size {
		return sizeMismatch(key, n, size)
	}
	typeTmp, _, err := l.writeTemp(strings.NewReader(ct), -1)
	defer func() { _ = l.root.Remove(typeTmp) }()
	if err != nil {
		return fmt.Errorf("blob: put %q: content type: %w", key, err)
	}

	obj, typ := path.Join(objectsDir, key), path.Join(typesDir, key)
	for _, p := range []string{obj, typ} {
		if err := l.root.MkdirAll(path.Dir(p), 0o750); err != nil {
			return fmt.Errorf("blob: put %q: %w", key, err)
		}
	}
	// Type first: an object that exists always has its type; a crash
	// between the renames of an overwrite leaves the old bytes with the new
	// type, which the next Put of that key repairs.
	if err := l.root.Rename(typeTmp, typ); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	if err := l.root.Rename(dataTmp, obj); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	// The renames are durable only once their directories are synced.
	for _, d := range []string{path.Dir(typ), path.Dir(obj)} {
		if err := l.syncDir(d); err != nil {
			return fmt.Errorf("blob: put %q: %w", key, err)
		}
	}
	return nil
}

// writeTemp copies at most limit+1 bytes of r (all of it if limit < 0) to a
// new synced file under tmp/ and returns its name and the bytes written.
func (l *Local) writeTemp(r io.Reader, limit int64) (name string, n int64, err error) {
	name = path.Join(tmpDir, rand.Text())
	f, err := l.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return name, 0, err
	}
	if limit >= 0 {
		// One byte past the limit is enough to tell that r is too long.
		r = io.LimitReader(r, limit+1)
	}
	n, err = io.CopyBuffer(f, r, make([]byte, 256<<10))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return name, n, err
}

func (l *Local) syncDir(dir string) error {
	d, err := l.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get opens the object under key; the caller closes it.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, switchboard.BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, switchboard.BlobInfo{}, fmt.Errorf("blob: get %q: %w", key, err)
	}
	f, st, ct, err := l.open(key)
	if err != nil {
		return nil, switchboard.BlobInfo{}, fmt.Errorf("blob: get %q: %w", key, err)
	}
	return f, switchboard.BlobInfo{Size: st.Size(), ContentType: ct}, nil
}

// open is Get for both Get and the handler; its errors carry no key.
func (l *Local) open(key string) (*os.File, fs.FileInfo, string, error) {
	if err := ValidateKey(key); err != nil {
		return nil, nil, "", err
	}
	f, err := l.root.Open(path.Join(objectsDir, key))
	if isNotExist(err) {
		return nil, nil, "", ErrNotFound
	}
	if err != nil {
		return nil, nil, "", err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		// A directory made for deeper keys ("a" when "a/b" exists).
		err = ErrNotFound
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, "", err
	}
	ct := defaultContentType
	b, err := l.root.ReadFile(path.Join(typesDir, key))
	switch {
	case err == nil:
		ct = string(b)
	case !isNotExist(err):
		_ = f.Close()
		return nil, nil, "", err
	}
	return f, st, ct, nil
}

// isNotExist also counts ENOTDIR: "a/b" when "a" is an object.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Delete removes the object under key; deleting a missing key is not an
// error, as with S3.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	// Object first, so Get reports not found as soon as anything is gone.
	for _, p := range []string{path.Join(objectsDir, key), path.Join(typesDir, key)} {
		st, err := l.root.Lstat(p)
		if isNotExist(err) || (err == nil && st.IsDir()) {
			continue
		}
		if err == nil {
			err = l.root.Remove(p)
		}
		if err != nil && !isNotExist(err) {
			return fmt.Errorf("blob: delete %q: %w", key, err)
		}
	}
	return nil
}

// URL returns a URL that Handler serves until ttl has passed. It does not
// check that the object exists.
func (l *Local) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if err := checkTTL(ttl); err != nil {
		return "", err
	}
	// Round up so the URL lives at least ttl.
	exp := strconv.FormatInt(l.now().Add(ttl+time.Second-1).Unix(), 10)
	return l.baseURL + "/blobs/" + escapeKey(key) + "?exp=" + exp + "&sig=" + hex.EncodeToString(l.sign(key, exp)), nil
}

func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (l *Local) sign(key, exp string) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(key + "\n" + exp))
	return m.Sum(nil)
}

// verify checks an untampered signature for key, valid before second exp.
func (l *Local) verify(key, exp, sig string) bool {
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || l.now().Unix() >= e {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, l.sign(key, exp))
}

// Handler serves GET (and HEAD) /blobs/{key...} for URLs made by URL: 403
// unless the signature is valid and unexpired (checked before existence, so
// unsigned requests learn nothing), 404 if the object is missing. It
// expects the path as seen at baseURL's root: if baseURL has a path, strip
// it first (http.StripPrefix).
func (l *Local) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /blobs/{key...}", l.serveBlob)
	return mux
}

func (l *Local) serveBlob(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	q := r.URL.Query()
	exp := q.Get("exp")
	if !l.verify(key, exp, q.Get("sig")) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	f, st, ct, err := l.open(key)
	switch {
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidKey):
		http.Error(w, "not found", http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer f.Close()

	h := w.Header()
	h.Set("Content-Type", ct)
	// Stored files come from customers: never let a browser run them in our
	// origin, whatever their bytes or declared type.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", disposition(ct, path.Base(key)))
	e, _ := strconv.ParseInt(exp, 10, 64)
	h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(max(0, e-l.now().Unix()), 10))
	// ServeContent answers Range requests, which audio and video players need.
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// disposition lets a browser show inline only what cannot run script:
// raster images, audio, video and PDF. SVG is an image that can.
func disposition(ct, name string) string {
	mt, _, _ := mime.ParseMediaType(ct)
	kind := "attachment"
	switch {
	case mt == "image/svg+xml":
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"),
		strings.HasPrefix(mt, "video/"), mt == "application/pdf":
		kind = "inline"
	}
	if v := mime.FormatMediaType(kind, map[string]string{"filename": name}); v != "" {
		return v
	}
	return kind
}
