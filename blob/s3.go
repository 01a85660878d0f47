package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// unknownSizePart bounds the memory one upload of unknown size holds: the
// client buffers a part at a time, and its default for unknown sizes is
// hundreds of megabytes.
const unknownSizePart = 16 << 20

// S3 keeps objects in a bucket of any S3-compatible store.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string // "" or ends in "/"
}

var _ switchboard.BlobStore = (*S3)(nil)

// s3Config is what an s3:// URL says.
type s3Config struct {
	bucket, prefix                     string
	endpoint, region                   string
	accessKey, secretKey, sessionToken string
	secure                             bool
}

// NewS3 connects to the store rawURL names and creates the bucket if it is
// missing. The URL is
//
//	s3://BUCKET[/PREFIX]?endpoint=HOST:PORT[&region=R][&insecure=true][&access_key=K&secret_key=S[&session_token=T]]
//
// insecure=true means plain HTTP. Without access_key and secret_key the
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)
// environment variables are used. Buckets are addressed path-style, which
// every S3-compatible server supports. Keys are stored under PREFIX.
func NewS3(ctx context.Context, rawURL string) (*S3, error) {
	cfg, err := parseS3URL(rawURL)
	if err != nil {
		return nil, err
	}
	client, err := minio.New(cfg.endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.accessKey, cfg.secretKey, cfg.sessionToken),
		Secure:       cfg.secure,
		Region:       cfg.region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: s3 endpoint %s: %w", cfg.endpoint, err)
	}
	s := &S3{client: client, bucket: cfg.bucket, prefix: cfg.prefix}
	if err := s.ensureBucket(ctx, cfg.region); err != nil {
		return nil, fmt.Errorf("blob: s3 bucket %q at %s: %w", cfg.bucket, cfg.endpoint, err)
	}
	return s, nil
}

// parseS3URL never puts rawURL in an error: it may hold a secret key.
func parseS3URL(rawURL string) (s3Config, error) {
	var cfg s3Config
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return cfg, fmt.Errorf("blob: s3 URL: %w", err)
	}
	if !strings.EqualFold(u.Scheme, "s3") {
		return cfg, fmt.Errorf("blob: s3 URL has scheme %q, want s3", u.Scheme)
	}
	if u.User != nil {
		return cfg, errors.New("blob: s3 URL: put credentials in access_key and secret_key, not before the bucket")
	}
	cfg.bucket = u.Host
	if cfg.bucket == "" {
		return cfg, errors.New("blob: s3 URL has no bucket: want s3://BUCKET?endpoint=HOST:PORT")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.bucket); err != nil {
		return cfg, fmt.Errorf("blob: s3 URL: bucket %q: %w", cfg.bucket, err)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if err := ValidateKey(p); err != nil {
			return cfg, fmt.Errorf("blob: s3 URL: prefix: %w", err)
		}
		cfg.prefix = p + "/"
	}

	q := u.Query()
	for name := range q {
		switch name {
		case "endpoint", "region", "insecure", "access_key", "secret_key", "session_token":
		default:
			// A misspelt option silently ignored would be found in production.
			return cfg, fmt.Errorf("blob: s3 URL: unknown parameter %q", name)
		}
	}
	cfg.endpoint = q.Get("endpoint")
	switch {
	case cfg.endpoint == "":
		return cfg, errors.New("blob: s3 URL needs endpoint=HOST[:PORT] (e.g. s3.us-east-1.amazonaws.com)")
	case strings.Contains(cfg.endpoint, "/"):
		return cfg, fmt.Errorf("blob: s3 URL: endpoint %q must be HOST[:PORT], without scheme or path", cfg.endpoint)
	}
	cfg.region = q.Get("region")
	cfg.secure = true
	if v := q.Get("insecure"); v != "" {
		insecure, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("blob: s3 URL: insecure=%q: want true or false", v)
		}
		cfg.secure = !insecure
	}

	cfg.accessKey, cfg.secretKey, cfg.sessionToken = q.Get("access_key"), q.Get("secret_key"), q.Get("session_token")
	if cfg.accessKey == "" && cfg.secretKey == "" {
		cfg.accessKey = os.Getenv("AWS_ACCESS_KEY_ID")
		cfg.secretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
		if cfg.sessionToken == "" {
			cfg.sessionToken = os.Getenv("AWS_SESSION_TOKEN")
		}
	}
	if cfg.accessKey == "" || cfg.secretKey == "" {
		return cfg, errors.New("blob: s3 URL: need both access_key and secret_key, in the URL or as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	return cfg, nil
}

func (s *S3) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	// Another instance starting at the same time may have won the race.
	if err != nil && s3Code(err) != "BucketAlreadyOwnedByYou" {
		return fmt.Errorf("create: %w", err)
	}
	return nil
}

func s3Code(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}

func (s *S3) object(key string) string { return s.prefix + key }

// Put uploads r under key. If size >= 0, r must hold exactly size bytes;
// an upload of unknown size (-1) goes up in parts of unknownSizePart.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	ct, err := normalizeType(contentType)
	if err != nil {
		return err
	}
	opts := minio.PutObjectOptions{ContentType: ct}
	body := r
	var exact *exactReader
	if size >= 0 {
		exact = &exactReader{r: r, left: size}
		body = exact
	} else {
		opts.PartSize = unknownSizePart
	}
	_, err = s.client.PutObject(ctx, s.bucket, s.object(key), body, size, opts)
	switch {
	case err != nil && exact != nil && exact.tooLong:
		// Checked by flag: the client need not wrap the reader's error.
		return sizeMismatch(key, size+1, size)
	case err != nil:
		return fmt.Errorf("blob: put %q: %w", key, err)
	case exact != nil && (exact.tooLong || !exact.atEOF()):
		// The upload went through without the client seeing the excess (it
		// may skip reading an empty object): undo it.
		if err := s.client.RemoveObject(ctx, s.bucket, s.object(key), minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("blob: put %q: removing mis-sized object: %w", key, err)
		}
		return sizeMismatch(key, size+1, size)
	}
	return nil
}

var errTooLong = errors.New("reader holds more than the given size")

// exactReader yields at most left bytes of r and fails the read that
// completes them if r holds more. The client reads exactly the size it was
// given and would otherwise store a silently truncated object, replacing
// whatever the key held; failing mid-upload leaves the old object alone.
type exactReader struct {
	r       io.Reader
	left    int64
	eof     bool
	tooLong bool
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		if !e.atEOF() {
			e.tooLong = true
			return 0, errTooLong
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if e.left == 0 && (err == nil || err == io.EOF) {
		if !e.atEOF() {
			e.tooLong = true
			return n, errTooLong
		}
		return n, io.EOF
	}
	return n, err
}

// atEOF reports (once left is spent) whether r has nothing more.
func (e *exactReader) atEOF() bool {
	if e.eof {
		return true
	}
	var one [1]byte
	n, _ := io.ReadFull(e.r, one[:])
	e.eof = n == 0
	return e.eof
}

// Get streams the object under key; the caller closes it. Reads use ctx.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, switchboard.BlobInfo, error) {
	if err := ValidateKey(key); err != nil {
		return nil, switchboard.BlobInfo{}, err
	}
	// Core's GetObject is one GET whose error carries S3's code; the
	// high-level Object would HEAD first, and a HEAD's 404 says NoSuchKey
	// even when the bucket is what is missing.
	body, st, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.object(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, switchboard.BlobInfo{}, fmt.Errorf("blob: get %q: %w", key, notFound(err))
	}
	return body, switchboard.BlobInfo{Size: st.Size, ContentType: st.ContentType}, nil
}

// notFound turns S3's missing-key answer into ErrNotFound. A missing bucket
// is left alone: that is a configuration error, not a missing object.
func notFound(err error) error {
	if s3Code(err) == "NoSuchKey" {
		return ErrNotFound
	}
	return err
}

// Delete removes the object under key; deleting a missing key is not an
// error.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.object(key), minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	return nil
}

// URL returns a presigned GET URL, served by the S3 store itself, valid for
// ttl. It does not check that the object exists.
func (s *S3) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if err := checkTTL(ttl); err != nil {
		return "", err
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, s.object(key), ttl, nil)
	if err != nil {
		return "", fmt.Errorf("blob: url %q: %w", key, err)
	}
	return u.String(), nil
}
