package blob_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
	"github.com/switchboard-inbox/switchboard/blob/blobtest"
)

// s3URLWithPrefix gives each test its own key prefix in the shared bucket.
func s3URLWithPrefix(t *testing.T) string {
	u, err := url.Parse(blob.S3URLForTest(t))
	if err != nil {
		t.Fatal("SWITCHBOARD_TEST_S3_URL does not parse")
	}
	nonSlug := regexp.MustCompile(`[^a-z0-9]+`)
	slug := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	u.Path = fmt.Sprintf("/test/%s-%d", slug, time.Now().UnixNano())
	return u.String()
}

func newS3(t *testing.T) *blob.S3 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := blob.NewS3(ctx, s3URLWithPrefix(t))
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s
}

func TestS3(t *testing.T) {
	blob.S3URLForTest(t) // skip or fail once, not in every subtest
	blobtest.Run(t, blobtest.Config{
		New: func(t *testing.T) switchboard.BlobStore { return newS3(t) },
	})
}

// TestS3Prefix: two stores with different prefixes in one bucket do not see
// each other's keys.
func TestS3Prefix(t *testing.T) {
	a, b := newS3(t), newS3(t)
	blobtest.Put(t, a, "same/key", []byte("a"), "text/plain")
	blobtest.ExpectNotFound(t, b, "same/key")
}

func TestOpenS3(t *testing.T) {
	s, err := blob.Open(context.Background(), s3URLWithPrefix(t), "", nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, ok := s.(*blob.S3); !ok {
		t.Fatalf("Open(s3://...) = %T, want *blob.S3", s)
	}
}
