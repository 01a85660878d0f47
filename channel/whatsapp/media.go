package whatsapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// MediaClient copies inbound media out of Meta. Media URLs live about five
// minutes and webhook media ids about seven days, so copy as soon as the
// message is durable.
type MediaClient struct {
	BaseURL string // Graph API base, e.g. https://graph.facebook.com/v25.0
	Token   string
	HTTP    *http.Client // nil: http.DefaultClient; bound calls with ctx
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
// metadata's, else the download's Content-Type.
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
	var info mediaInfo
	if err := meta.Call(ctx, c.HTTP, http.MethodGet, endpoint, c.Token, nil, &info); err != nil {
		return nil, "", fmt.Errorf("whatsapp media %s: metadata: %w", mediaID, err)
	}
	if size, ok := meta.NumberText(info.FileSize); ok {
		if n, err := strconv.ParseInt(size, 10, 64); err == nil && n > maxBytes {
			return nil, "", fmt.Errorf("whatsapp media %s: file_size %d: %w", mediaID, n, tooLarge(maxBytes))
		}
	}
	if info.SHA256 == "" {
		return nil, "", fmt.Errorf("whatsapp media %s: metadata has no sha256 to check the download against", mediaID)
	}
	u, err := url.Parse(info.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", fmt.Errorf("whatsapp media %s: metadata url %q is not an absolute http(s) URL", mediaID, info.URL)
	}

	data, contentType, err := c.download(ctx, info.URL, maxBytes)
	if err != nil {
		return nil, "", fmt.Errorf("whatsapp media %s: %w", mediaID, err)
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

func (c *MediaClient) download(ctx context.Context, rawURL string, maxBytes int64) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, "", fmt.Errorf("download: %w", err)
	}
	// Meta's media URLs need the token too. net/http drops it on a
	// redirect to another host.
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, meta.MaxReplyBytes))
		return nil, "", fmt.Errorf("download: %w", meta.DecodeAPIError(resp.StatusCode, body))
	}
	if resp.ContentLength > maxBytes {
		return nil, "", tooLarge(maxBytes)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(resp.Body, maxBytes+1)); err != nil {
		return nil, "", fmt.Errorf("download: %w", err)
	}
	if int64(buf.Len()) > maxBytes {
		return nil, "", tooLarge(maxBytes)
	}
	return buf.Bytes(), resp.Header.Get("Content-Type"), nil
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
