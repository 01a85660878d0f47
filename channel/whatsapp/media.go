package whatsapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/fetch"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// MediaClient copies inbound media out of Meta. Media URLs live about five
// minutes and webhook media ids about seven days, so copy as soon as the
// message is durable. Both requests go through package fetch: to Meta's
// media hosts over https (Hosts) or to BaseURL's origin, public addresses
// only unless that origin is a configured stand-in. Set the fields before
// the first Fetch.
type MediaClient struct {
	BaseURL string // Graph API base, e.g. https://graph.facebook.com/v25.0
	Token   string
	HTTP    *http.Client // nil: http.DefaultClient's settings; bound calls with ctx
	// Hosts replaces meta.DefaultMediaHosts as where media may be fetched
	// from; BaseURL's origin is allowed too.
	Hosts []string

	fetchOnce sync.Once
	fetcher   *fetch.Fetcher
}

func (c *MediaClient) media() *fetch.Fetcher {
	c.fetchOnce.Do(func() {
		hosts := c.Hosts
		if hosts == nil {
			hosts = meta.DefaultMediaHosts()
		}
		c.fetcher = fetch.New(fetch.Policy{Provider: "Meta", Hosts: hosts, StandIns: []string{c.BaseURL}}, c.HTTP)
	})
	return c.fetcher
}

// mediaInfo is GET /{media-id}'s reply.
type mediaInfo struct {
	URL      string          `json:"url"`
	MimeType string          `json:"mime_type"`
	SHA256   string          `json:"sha256"`
	FileSize json.RawMessage `json:"file_size"`
}

// Fetch downloads one media object: GET {BaseURL}/{mediaID} for its
// metadata, then GET the returned URL, both with the bearer token. It
// refuses more than maxBytes (an ETOOLARGE error; maxBytes must be
// positive) and bytes whose SHA-256 differs from the metadata's, so a
// truncated or substituted download is never stored. mimeType is the
// metadata's, else the download's Content-Type. A URL or address package
// fetch refuses (a *fetch.Refusal) is a permanent error: retrying cannot
// make it acceptable.
func (c *MediaClient) Fetch(ctx context.Context, mediaID string, maxBytes int64) (data []byte, mimeType string, err error) {
	switch {
	case strings.TrimSpace(mediaID) == "":
		return nil, "", invalid("whatsapp media: id is empty")
	case maxBytes <= 0:
		return nil, "", invalid("whatsapp media: maxBytes must be positive")
	case c.Token == "":
		return nil, "", invalid("whatsapp media: no access token configured")
	}
	endpoint, err := meta.Endpoint(c.BaseURL, mediaID)
	if err != nil {
		return nil, "", fmt.Errorf("whatsapp media %s: %w", mediaID, err)
	}
	f := c.media()
	var info mediaInfo
	if err := meta.Call(ctx, f.Client(), http.MethodGet, endpoint, c.Token, nil, &info); err != nil {
		return nil, "", permanentIfRefused(fmt.Errorf("whatsapp media %s: metadata: %w", mediaID, err))
	}
	if size, ok := meta.NumberText(info.FileSize); ok {
		if n, err := strconv.ParseInt(size, 10, 64); err == nil && n > maxBytes {
			return nil, "", fmt.Errorf("whatsapp media %s: file_size %d: %w", mediaID, n, tooLarge(maxBytes))
		}
	}
	if info.SHA256 == "" {
		return nil, "", fmt.Errorf("whatsapp media %s: metadata has no sha256 to check the download against", mediaID)
	}
	// The URL comes from Meta's answer, but is held to the same rules as
	// any other: a stand-in or a compromised answer must not point us
	// inside.
	if err := f.Check(info.URL); err != nil {
		return nil, "", switchboard.Permanent(fmt.Errorf("whatsapp media %s: metadata url: %w", mediaID, err))
	}

	data, contentType, err := c.download(ctx, f, info.URL, maxBytes)
	if err != nil {
		return nil, "", permanentIfRefused(fmt.Errorf("whatsapp media %s: %w", mediaID, err))
	}
	sum := sha256.Sum256(data)
	if !sumMatches(sum[:], info.SHA256) {
		return nil, "", fmt.Errorf("whatsapp media %s: sha256 of the %d bytes downloaded is %x, metadata says %s",
			mediaID, len(data), sum, info.SHA256)
	}
	mimeType = info.MimeType
	if mimeType == "" {
		mimeType = contentType
	}
	if mimeType == "" {
		mimeType = "application/octet-stream"
	}
	return data, mimeType, nil
}

func (c *MediaClient) download(ctx context.Context, f *fetch.Fetcher, rawURL string, maxBytes int64) ([]byte, string, error) {
	// Meta's media URLs need the token too; package fetch drops it on a
	// redirect to another origin.
	resp, err := f.Get(ctx, rawURL, http.Header{"Authorization": {"Bearer " + c.Token}}, maxBytes)
	if err != nil {
		return nil, "", fmt.Errorf("download: %w", err)
	}
	if !resp.OK() {
		return nil, "", fmt.Errorf("download: %w", meta.DecodeAPIError(resp.StatusCode, resp.Body))
	}
	return resp.Body, resp.Header.Get("Content-Type"), nil
}

// permanentIfRefused marks a refusal by package fetch permanent.
func permanentIfRefused(err error) error {
	if fetch.IsRefusal(err) {
		return switchboard.Permanent(err)
	}
	return err
}

func tooLarge(maxBytes int64) error {
	return switchboard.Errorf(switchboard.ETOOLARGE, "media is larger than %d bytes", maxBytes)
}

// sumMatches compares a SHA-256 with the one Meta sent. The media endpoint
// sends hex, webhooks have been seen with base64; both are accepted.
func sumMatches(sum []byte, want string) bool {
	want = strings.TrimSpace(want)
	if b, err := hex.DecodeString(want); err == nil {
		return bytes.Equal(b, sum)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(want); err == nil {
			return bytes.Equal(b, sum)
		}
	}
	return false
}
