package twiliotest

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/identity"
)

// APIVersion is the only Twilio REST API version there is for Messaging.
const APIVersion = "2010-04-01"

// DefaultPoolNumber is the From a message sent with only a
// MessagingServiceSid reports in its status callbacks: Twilio picks a
// number from the service's pool, and this stand-in has one number in it
// (Twilio's own magic test number).
const DefaultPoolNumber = "+15005550006"

// Twilio error codes the stand-in answers with
// (https://www.twilio.com/docs/api/errors).
const (
	CodeAuthenticate       = 20003 // 401: wrong or missing credentials
	CodeMethodNotAllowed   = 20004 // 405
	CodeNotFound           = 20404 // 404: unknown resource or another account
	CodeInternal           = 20500 // 500: WithFailures
	CodeInvalidTo          = 21211 // 400: To is not a valid phone number
	CodeInvalidFrom        = 21212 // 400: From is not a number, short code or sender ID
	CodeBodyRequired       = 21602 // 400: no Body and no MediaUrl
	CodeFromRequired       = 21603 // 400: neither From nor MessagingServiceSid
	CodeToRequired         = 21604 // 400: no To
	CodeInvalidCallback    = 21609 // 400: StatusCallback is not an http(s) URL
	CodeUnsubscribed       = 21610 // 400: the recipient replied STOP
	CodeBodyTooLong        = 21617 // 400: Body over 1600 characters
	CodeInvalidMediaURL    = 21620 // 400: a MediaUrl is not an http(s) URL
	CodeTooManyMedia       = 21623 // 400: more than 10 MediaUrl
	CodeInvalidService     = 21701 // 400: MessagingServiceSid is malformed
	CodeUnreachableHandset = 30003 // delivery: WithUndeliverable
	CodeUnknownDelivery    = 30008 // delivery: a failed or undelivered status otherwise
)

// DefaultBaseURL is where inbound media URLs point until SetBaseURL.
const DefaultBaseURL = twilio.DefaultBaseURL

// maxFormBytes bounds a Messages.json request: 1600 characters of body and
// ten media URLs fit easily.
const maxFormBytes = 1 << 20

// Message statuses the default sequence and WithUndeliverable use.
const (
	StatusQueued      = "queued"
	StatusAccepted    = "accepted"
	StatusSent        = "sent"
	StatusDelivered   = "delivered"
	StatusUndelivered = "undelivered"
	StatusFailed      = "failed"
)

// Server is the stand-in. Create it with New and serve Handler.
type Server struct {
	accountSID string
	authToken  string
	now        func() time.Time
	client     *http.Client
	statuses   []string
	shuffle    bool
	delay      time.Duration
	handler    http.Handler

	mu            sync.Mutex
	baseURL       string
	failures      int
	unsubscribed  map[string]bool
	undeliverable map[string]bool
	messages      []SentMessage
	callbacks     []Callback
	media         map[string]MediaFile // by MessageSid + "/" + MediaSid
	recordings    map[string][]byte    // WAV by RecordingSid
	numbers       []*Number            // the account's phone numbers, in listing order
	services      []messagingService   // the account's Messaging Services, in listing order
	closed        bool
	done          chan struct{}
	wg            sync.WaitGroup
}

// SentMessage is a message accepted by POST Messages.json, as it arrived.
type SentMessage struct {
	SID                 string
	To                  string
	From                string // "" when only MessagingServiceSid was given
	MessagingServiceSid string
	Body                string
	MediaURLs           []string
	StatusCallback      string // as given, fragment included
	NumSegments         int
	// Statuses is the status sequence planned for the message, in
	// delivery order (callbacks may be shuffled).
	Statuses []string
	At       time.Time
}

// Callback is one status callback the server posted.
type Callback struct {
	MessageSid string
	URL        string // the URL requested and signed: StatusCallback without its fragment
	Form       url.Values
	Signature  string
	// StatusCode is the receiver's answer, 0 when the request failed (Err).
	StatusCode int
	Err        error
	At         time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithUnsubscribed makes sends to these To numbers fail with 400 21610, as
// after the recipient replied STOP.
func WithUnsubscribed(numbers ...string) Option {
	return func(s *Server) {
		for _, n := range numbers {
			s.unsubscribed[n] = true
		}
	}
}

// WithFailures makes the next n authenticated sends answer 500 (20500),
// before any validation, to exercise retries.
func WithFailures(n int) Option {
	return func(s *Server) { s.failures = max(n, 0) }
}

// WithStatusSequence sets the statuses each message goes through, one
// status callback each, in order (default queued, sent, delivered). A
// failed or undelivered status carries ErrorCode 30008.
func WithStatusSequence(statuses ...string) Option {
	return func(s *Server) { s.statuses = slices.Clone(statuses) }
}

// WithUndeliverable makes messages to these To numbers end in undelivered
// with ErrorCode 30003 (unreachable handset): the status sequence is cut
// before its first final status and undelivered appended.
func WithUndeliverable(numbers ...string) Option {
	return func(s *Server) {
		for _, n := range numbers {
			s.undeliverable[n] = true
		}
	}
}

// WithClock sets the clock used for date_created and the At fields.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithHTTPClient sets the client that posts status callbacks and, when
// SendInbound is given none, inbound webhooks (default: a client with a
// 15 s timeout). Use httptest.Server.Client() for a TLS receiver.
func WithHTTPClient(c *http.Client) Option {
	return func(s *Server) { s.client = c }
}

// WithShuffledCallbacks sends each message's status callbacks in a random
// order other than the sequence's own (when it has two or more), to test
// that receivers tolerate out-of-order callbacks.
func WithShuffledCallbacks() Option {
	return func(s *Server) { s.shuffle = true }
}

// WithCallbackDelay waits d before the first status callback of a message
// and between callbacks, so that a demo shows statuses advancing. Close
// cuts the waits short.
func WithCallbackDelay(d time.Duration) Option {
	return func(s *Server) { s.delay = d }
}

// WithBaseURL is SetBaseURL as an option, for a listener whose address is
// known before New.
func WithBaseURL(u string) Option {
	return func(s *Server) { s.baseURL = strings.TrimRight(u, "/") }
}

// New returns a stand-in for the account accountSID with authToken.
func New(accountSID, authToken string, opts ...Option) *Server {
	s := &Server{
		accountSID:    accountSID,
		authToken:     authToken,
		now:           time.Now,
		client:        &http.Client{Timeout: 15 * time.Second},
		statuses:      []string{StatusQueued, StatusSent, StatusDelivered},
		baseURL:       DefaultBaseURL,
		unsubscribed:  map[string]bool{},
		undeliverable: map[string]bool{},
		media:         map[string]MediaFile{},
		recordings:    map[string][]byte{},
		done:          make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.stampCreated()
	prefix := "/" + APIVersion + "/Accounts/{AccountSid}/Messages"
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+".json", s.handleMessages)
	mux.HandleFunc(prefix+"/{MessageSid}/Media/{MediaSid}", s.handleMedia)
	mux.HandleFunc("/"+APIVersion+"/Accounts/{AccountSid}/Recordings/{Recording}", s.handleRecording)
	mux.HandleFunc("/"+APIVersion+"/Accounts/{AccountSid}/IncomingPhoneNumbers.json", s.handlePhoneNumbers)
	mux.HandleFunc("/"+APIVersion+"/Accounts/{AccountSid}/IncomingPhoneNumbers/{Number}", s.handlePhoneNumber)
	mux.HandleFunc("/v1/Services", s.handleMessagingServices)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "The requested resource "+r.URL.Path+" was not found")
	})
	s.handler = mux
	return s
}

// Handler serves the REST API.
func (s *Server) Handler() http.Handler { return s.handler }

// SetBaseURL sets the scheme and host (and any path prefix) the server is
// reachable at, such as httptest.Server.URL. Inbound MediaUrlN built
// afterwards point there.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(u, "/")
}

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.messages)
	for i := range out {
		out[i].MediaURLs = slices.Clone(out[i].MediaURLs)
		out[i].Statuses = slices.Clone(out[i].Statuses)
	}
	return out
}

// Callbacks returns the status callbacks posted so far, in the order they
// completed.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.callbacks)
	for i := range out {
		out[i].Form = cloneValues(out[i].Form)
	}
	return out
}

// Close stops status callbacks for later sends and waits for those under
// way; delays between them are cut short. The handler keeps answering
// (sends still succeed, without callbacks). Close is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// handleMessages is POST Messages.json: create a message.
func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		// GET would list messages at Twilio; the stand-in only creates.
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed")
		return
	}
	s.mu.Lock()
	fail := s.failures > 0
	if fail {
		s.failures--
	}
	s.mu.Unlock()
	if fail {
		writeError(w, http.StatusInternalServerError, CodeInternal, "Internal Server Error")
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Unable to read the request: "+err.Error())
		return
	}
	f := r.PostForm
	m := SentMessage{
		To:                  f.Get("To"),
		From:                f.Get("From"),
		MessagingServiceSid: f.Get("MessagingServiceSid"),
		Body:                f.Get("Body"),
		MediaURLs:           slices.Clone(f["MediaUrl"]),
		StatusCallback:      f.Get("StatusCallback"),
	}
	if status, code, msg := validate(m); code != 0 {
		writeError(w, status, code, msg)
		return
	}

	now := s.now().UTC()
	m.SID = newSID("SM")
	m.At = now
	m.NumSegments = max(sms.Segments(m.Body).Segments, 1) // an MMS counts one
	s.mu.Lock()
	if s.unsubscribed[m.To] {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, CodeUnsubscribed, "Attempt to send to unsubscribed recipient")
		return
	}
	steps := s.plan(m.To)
	for _, st := range steps {
		m.Statuses = append(m.Statuses, st.status)
	}
	s.messages = append(s.messages, m)
	if m.StatusCallback != "" && !s.closed {
		s.wg.Add(1)
		go s.sendCallbacks(m, steps)
	}
	s.mu.Unlock()

	status := StatusQueued
	if m.From == "" {
		status = StatusAccepted // Twilio picks the sender later
	}
	uri := "/" + APIVersion + "/Accounts/" + s.accountSID + "/Messages/" + m.SID
	res := messageResource{
		AccountSID:          s.accountSID,
		APIVersion:          APIVersion,
		Body:                m.Body,
		DateCreated:         now.Format(time.RFC1123Z),
		DateUpdated:         now.Format(time.RFC1123Z),
		Direction:           "outbound-api",
		From:                nullable(m.From),
		MessagingServiceSID: nullable(m.MessagingServiceSid),
		NumMedia:            strconv.Itoa(len(m.MediaURLs)),
		NumSegments:         strconv.Itoa(m.NumSegments),
		PriceUnit:           "USD",
		SID:                 m.SID,
		Status:              status,
		SubresourceURIs:     map[string]string{"media": uri + "/Media.json"},
		To:                  m.To,
		URI:                 uri + ".json",
	}
	writeJSON(w, http.StatusCreated, res)
}

// messageResource is Twilio's message resource, fields in Twilio's order.
type messageResource struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

// validate checks a create request the way Twilio does, in Twilio's order,
// and returns the HTTP status, error code and message of the first problem
// (code 0 when there is none).
func validate(m SentMessage) (status, code int, msg string) {
	bad := func(code int, msg string) (int, int, string) { return http.StatusBadRequest, code, msg }
	switch {
	case m.To == "":
		return bad(CodeToRequired, "A 'To' phone number is required.")
	case !validTo(m.To):
		return bad(CodeInvalidTo, fmt.Sprintf("The 'To' number %s is not a valid phone number.", m.To))
	case m.From == "" && m.MessagingServiceSid == "":
		return bad(CodeFromRequired, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
	case m.From != "" && !validFrom(m.From):
		return bad(CodeInvalidFrom, fmt.Sprintf("The 'From' number %s is not a valid phone number, shortcode, or alphanumeric sender ID.", m.From))
	case m.MessagingServiceSid != "" && !validSID(m.MessagingServiceSid, "MG"):
		return bad(CodeInvalidService, fmt.Sprintf("The Messaging Service Sid %s is invalid.", m.MessagingServiceSid))
	case m.Body == "" && len(m.MediaURLs) == 0:
		return bad(CodeBodyRequired, "Message body is required.")
	case utf8.RuneCountInString(m.Body) > twilio.MaxBodyChars:
		return bad(CodeBodyTooLong, fmt.Sprintf("The concatenated message body exceeds the %d character limit.", twilio.MaxBodyChars))
	case len(m.MediaURLs) > twilio.MaxMediaURLs:
		return bad(CodeTooManyMedia, fmt.Sprintf("The number of media files exceeds the limit of %d.", twilio.MaxMediaURLs))
	case m.StatusCallback != "" && !httpURL(m.StatusCallback):
		return bad(CodeInvalidCallback, fmt.Sprintf("The StatusCallback URL %s is not a valid URL.", m.StatusCallback))
	}
	for _, u := range m.MediaURLs {
		if !httpURL(u) {
			return bad(CodeInvalidMediaURL, fmt.Sprintf("The media URL %s is invalid.", u))
		}
	}
	return 0, 0, ""
}

// validTo accepts a valid number written in E.164: "+", then 7 to 15
// digits, the first not 0, in a range its country has assigned.
func validTo(to string) bool {
	if !isE164(to) {
		return false
	}
	_, err := identity.Phone(to, "")
	return err == nil
}

func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validFrom accepts an E.164 number, a short code (3 to 8 digits) or an
// alphanumeric sender ID (up to 11 letters, digits and spaces, one letter
// at least).
func validFrom(from string) bool {
	if isE164(from) {
		return true
	}
	digits, letters, ok := 0, 0, true
	for i := 0; i < len(from); i++ {
		switch c := from[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			letters++
		case c == ' ':
		default:
			ok = false
		}
	}
	switch {
	case !ok:
		return false
	case letters == 0:
		return digits == len(from) && digits >= 3 && digits <= 8
	default:
		return len(from) <= 11 && strings.TrimSpace(from) != ""
	}
}

// validSID accepts prefix followed by 32 lower- or upper-case hex digits.
func validSID(sid, prefix string) bool {
	if len(sid) != len(prefix)+32 || !strings.HasPrefix(sid, prefix) {
		return false
	}
	_, err := hex.DecodeString(sid[len(prefix):])
	return err == nil
}

func httpURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// authorize checks Basic auth against the account and the AccountSid in the
// path, answering 401 or 404 as Twilio does.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	if !s.authenticate(w, r) {
		return false
	}
	if r.PathValue("AccountSid") != s.accountSID {
		writeError(w, http.StatusNotFound, CodeNotFound, "The requested resource "+r.URL.Path+" was not found")
		return false
	}
	return true
}

// authenticate checks Basic auth against the account, answering 401 as
// Twilio does. APIs without the AccountSid in the path (Messaging v1) stop
// here.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	// Both comparisons run whatever the first says.
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(s.accountSID)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.authToken)) == 1
	if !ok || !userOK || !passOK || s.authToken == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, CodeAuthenticate, "Authenticate")
		return false
	}
	return true
}

// apiError is Twilio's error JSON.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, apiError{
		Code:     code,
		Message:  msg,
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		Status:   status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // cannot happen for these types
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// newSID returns prefix followed by 32 random lower-case hex digits, the
// shape of every Twilio SID.
func newSID(prefix string) string {
	return prefix + randomHex(16)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
