package metatest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net/http"
	"strconv"
)

type mediaObject struct {
	id       string
	data     []byte
	mimeType string
	sum      [sha256.Size]byte
}

// AddMedia stores data as a WhatsApp media object and returns its id, as
// Meta holds the media of an inbound message.
func (s *Server) AddMedia(data []byte, mimeType string) (mediaID string) {
	m := &mediaObject{data: append([]byte(nil), data...), mimeType: mimeType, sum: sha256.Sum256(data)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		m.id = randomDigits(16)
		if _, taken := s.media[m.id]; !taken {
			break
		}
	}
	s.media[m.id] = m
	return m.id
}

func (s *Server) lookupMedia(id string) *mediaObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media[id]
}

func mediaNotFound(w http.ResponseWriter, id string) {
	graphError(w, http.StatusNotFound, graphErr{
		Message: "Unsupported get request. Object with ID '" + id + "' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
		Type:    "GraphMethodException", Code: 100, Subcode: 33,
	})
}

// serveMediaInfo answers GET /{media-id}.
func (s *Server) serveMediaInfo(w http.ResponseWriter, r *http.Request, id string) {
	m := s.lookupMedia(id)
	if m == nil {
		mediaNotFound(w, id)
		return
	}
	base := s.BaseURL()
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	writeJSON(w, http.StatusOK, struct {
		URL              string `json:"url"`
		MimeType         string `json:"mime_type"`
		SHA256           string `json:"sha256"`
		FileSize         int    `json:"file_size"`
		ID               string `json:"id"`
		MessagingProduct string `json:"messaging_product"`
	}{base + "/media/" + m.id + "/download", m.mimeType, hex.EncodeToString(m.sum[:]), len(m.data), m.id, "whatsapp"})
}

// serveDownload answers GET /media/{media-id}/download with the bytes.
func (s *Server) serveDownload(w http.ResponseWriter, id string) {
	m := s.lookupMedia(id)
	if m == nil {
		mediaNotFound(w, id)
		return
	}
	ct := m.mimeType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(m.data)))
	w.WriteHeader(http.StatusOK)
	w.Write(m.data)
}

// randomDigits returns n random decimal digits, the first non-zero.
func randomDigits(n int) string {
	b := make([]byte, n)
	for i := range b {
		lo := int64(0)
		if i == 0 {
			lo = 1
		}
		d, err := rand.Int(rand.Reader, big.NewInt(10-lo))
		if err != nil {
			panic(err)
		}
		b[i] = byte('0' + lo + d.Int64())
	}
	return string(b)
}

// randomToken returns n random bytes as unpadded base64url.
func randomToken(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newWAMID returns a fresh WhatsApp message id, "wamid." and base64.
func newWAMID() string { return "wamid." + base64.StdEncoding.EncodeToString(randomBytes(30)) }

// newMID returns a fresh Messenger message id.
func newMID() string { return "m_" + randomToken(48) }

// newIGMID returns a fresh Instagram message id (base64 like Meta's).
func newIGMID() string {
	return base64.RawURLEncoding.EncodeToString([]byte("ig_message_item:1:IGMessageID:" + randomDigits(17) + ":" + randomDigits(39)))
}
