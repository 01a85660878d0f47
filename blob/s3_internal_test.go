package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseS3URL(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")

	cfg, err := parseS3URL("s3://media/tenant/a/?endpoint=127.0.0.1:9000&region=eu-west-1&insecure=true&access_key=AK&secret_key=SK")
	if err != nil {
		t.Fatal(err)
	}
	want := s3Config{bucket: "media", prefix: "tenant/a/", endpoint: "127.0.0.1:9000", region: "eu-west-1",
		accessKey: "AK", secretKey: "SK", secure: false}
	if cfg != want {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}

	cfg, err = parseS3URL("s3://media?endpoint=s3.example.com&access_key=AK&secret_key=SK")
	if err != nil || !cfg.secure || cfg.prefix != "" {
		t.Fatalf("default: %+v %v, want secure and no prefix", cfg, err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "ENVAK")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "ENVSK")
	cfg, err = parseS3URL("s3://media?endpoint=s3.example.com")
	if err != nil || cfg.accessKey != "ENVAK" || cfg.secretKey != "ENVSK" {
		t.Fatalf("from env: %+v %v", cfg, err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")

	const secret = "TOPSECRETVALUE"
	for _, raw := range []string{
		"s3://media?endpoint=x",                                           // no credentials
		"s3://media?endpoint=x&access_key=AK",                             // half
		"s3://?endpoint=x&access_key=AK&secret_key=" + secret,             // no bucket
		"s3://media?access_key=AK&secret_key=" + secret,                   // no endpoint
		"s3://media?endpoint=http://x&access_key=AK&secret_key=" + secret, // scheme in endpoint
		"s3://media?endpoint=x&acess_key=AK&secret_key=" + secret,         // typo
		"s3://media?endpoint=x&insecure=maybe&access_key=AK&secret_key=" + secret,
		"s3://AK:" + secret + "@media?endpoint=x",
		"s3://Bad_Bucket?endpoint=x&access_key=AK&secret_key=" + secret,
		"s3://media/../x?endpoint=x&access_key=AK&secret_key=" + secret,
		"s3://media?endpoint=x&access_key=AK&secret_key=" + secret + "%zz",
		"http://media?endpoint=x&access_key=AK&secret_key=" + secret,
	} {
		_, err := parseS3URL(raw)
		if err == nil {
			t.Errorf("parseS3URL(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("parseS3URL(%q): error %q shows the secret", raw, err)
		}
	}
}

// TestS3CreatesBucket: NewS3 creates a missing bucket, and a second store on
// it (another instance starting) finds it.
func TestS3CreatesBucket(t *testing.T) {
	u, err := url.Parse(S3URLForTest(t))
	if err != nil {
		t.Fatal("SWITCHBOARD_TEST_S3_URL does not parse")
	}
	u.Host = "switchboard-test-" + hex.EncodeToString([]byte(rand.Text()[:6]))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s, err := NewS3(ctx, u.String())
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Delete(context.Background(), "k")
		_ = s.client.RemoveBucket(context.Background(), s.bucket)
	})
	if ok, err := s.client.BucketExists(ctx, s.bucket); err != nil || !ok {
		t.Fatalf("bucket %s exists = %v, %v", s.bucket, ok, err)
	}
	if err := s.Put(ctx, "k", strings.NewReader("v"), 1, "text/plain"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	again, err := NewS3(ctx, u.String())
	if err != nil {
		t.Fatalf("second NewS3 on the bucket: %v", err)
	}
	rc, _, err := again.Get(ctx, "k")
	if err != nil {
		t.Fatalf("Get through the second store: %v", err)
	}
	rc.Close()
}

// TestS3MissingBucketIsNotNotFound: a bucket deleted under a running store
// is a configuration error, not an object that was never stored.
func TestS3MissingBucketIsNotNotFound(t *testing.T) {
	u, err := url.Parse(S3URLForTest(t))
	if err != nil {
		t.Fatal("SWITCHBOARD_TEST_S3_URL does not parse")
	}
	u.Host = "switchboard-test-" + hex.EncodeToString([]byte(rand.Text()[:6]))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := NewS3(ctx, u.String())
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	if err := s.client.RemoveBucket(ctx, s.bucket); err != nil {
		t.Fatalf("RemoveBucket: %v", err)
	}
	_, _, err = s.Get(ctx, "k")
	if err == nil || errors.Is(err, ErrNotFound) || s3Code(err) != "NoSuchBucket" {
		t.Fatalf("Get in a missing bucket: %v, want NoSuchBucket and not ErrNotFound", err)
	}
}
