package twiliotest

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

// Error codes of the phone number API
// (https://www.twilio.com/docs/api/errors).
const (
	CodeInvalidURL         = 21402 // 400: SmsUrl or VoiceUrl is not an http(s) URL
	CodeInvalidMethod      = 21403 // 400: a *Method is not GET or POST
	CodeInvalidCallbackURL = 21502 // 400: StatusCallback is not an http(s) URL
)

// Paging of the list endpoints, as Twilio documents it.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// Number is one of the account's phone numbers as the stand-in keeps it
// (WithPhoneNumbers), updated by POST IncomingPhoneNumbers/{Sid}.json.
type Number struct {
	SID                  string // PN...
	PhoneNumber          string // E.164
	FriendlyName         string
	SmsURL               string
	SmsMethod            string
	VoiceURL             string
	VoiceMethod          string
	StatusCallback       string
	StatusCallbackMethod string
	Created              time.Time
	Updated              time.Time
}

// messagingService is a Messaging Service of WithMessagingService.
type messagingService struct {
	sid, name string
	created   time.Time
}

// WithPhoneNumbers gives the account these phone numbers (E.164), each
// with a new PN SID, Twilio's default friendly name ("(415) 555-0100" for
// a North American number, else the number) and no webhooks yet. Listing
// returns them in this order. It panics on a number that is not E.164.
func WithPhoneNumbers(numbers ...string) Option {
	return func(s *Server) {
		for _, n := range numbers {
			if !isE164(n) {
				panic(fmt.Sprintf("twiliotest: WithPhoneNumbers: %q is not an E.164 number", n))
			}
			if s.number(n) != nil {
				continue
			}
			s.numbers = append(s.numbers, &Number{
				SID: newSID("PN"), PhoneNumber: n, FriendlyName: friendlyName(n),
				SmsMethod: http.MethodPost, VoiceMethod: http.MethodPost, StatusCallbackMethod: http.MethodPost,
			})
		}
	}
}

// WithMessagingService gives the account a Messaging Service (sid is MG
// and 32 hex digits; it panics otherwise), without an inbound request URL
// and with use_inbound_webhook_on_number false, as Twilio creates one.
func WithMessagingService(sid, name string) Option {
	return func(s *Server) {
		if !validSID(sid, "MG") {
			panic(fmt.Sprintf("twiliotest: WithMessagingService: %q is not a Messaging Service SID", sid))
		}
		s.services = append(s.services, messagingService{sid: sid, name: name})
	}
}

// Number returns the phone number e164 as the stand-in has it now.
func (s *Server) Number(e164 string) (Number, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.number(e164); n != nil {
		return *n, true
	}
	return Number{}, false
}

// stampCreated dates the numbers and services the options made, once the
// clock option (in whatever order it came) is known.
func (s *Server) stampCreated() {
	now := s.now().UTC()
	for _, n := range s.numbers {
		n.Created, n.Updated = now, now
	}
	for i := range s.services {
		s.services[i].created = now
	}
}

// number finds e164. Callers hold s.mu (or are options, before serving).
func (s *Server) number(e164 string) *Number {
	for _, n := range s.numbers {
		if n.PhoneNumber == e164 {
			return n
		}
	}
	return nil
}

// handlePhoneNumbers is GET IncomingPhoneNumbers.json: one page of the
// account's numbers. Twilio's next_page_uri also carries a PageToken; the
// stand-in pages by Page and PageSize alone.
func (s *Server) handlePhoneNumbers(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// POST would buy a number at Twilio; the stand-in has a fixed set.
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed")
		return
	}
	page, size := paging(r)
	s.mu.Lock()
	total := len(s.numbers)
	start, end := pageBounds(total, page, size)
	items := make([]phoneNumberResource, 0, end-start)
	for _, n := range s.numbers[start:end] {
		items = append(items, s.phoneNumberResource(n))
	}
	s.mu.Unlock()

	path := "/" + APIVersion + "/Accounts/" + s.accountSID + "/IncomingPhoneNumbers.json"
	pageURI := func(p int) string { return path + "?PageSize=" + strconv.Itoa(size) + "&Page=" + strconv.Itoa(p) }
	res := phoneNumberList{
		End:          max(end-1, start),
		FirstPageURI: pageURI(0),
		Numbers:      items,
		Page:         page,
		PageSize:     size,
		Start:        start,
		URI:          pageURI(page),
	}
	if end < total {
		res.NextPageURI = nullable(pageURI(page + 1))
	}
	if page > 0 {
		res.PreviousPageURI = nullable(pageURI(page - 1))
	}
	writeJSON(w, http.StatusOK, res)
}

// handlePhoneNumber is GET (fetch) and POST (update) of
// IncomingPhoneNumbers/{Sid}.json. An update changes only the parameters
// given (an empty URL clears it) and checks all of them before changing
// any.
func (s *Server) handlePhoneNumber(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		// DELETE would release the number at Twilio.
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed")
		return
	}
	sid, found := strings.CutSuffix(r.PathValue("Number"), ".json")
	notFound := func() {
		writeError(w, http.StatusNotFound, CodeNotFound, "The requested resource "+r.URL.Path+" was not found")
	}
	if !found || !validSID(sid, "PN") {
		notFound()
		return
	}
	var form url.Values
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, 20001, "Unable to read the request: "+err.Error())
			return
		}
		form = r.PostForm
		if status, code, msg := validateNumberUpdate(form); code != 0 {
			writeError(w, status, code, msg)
			return
		}
	}

	s.mu.Lock()
	var n *Number
	for _, c := range s.numbers {
		if c.SID == sid {
			n = c
		}
	}
	if n == nil {
		s.mu.Unlock()
		notFound()
		return
	}
	if r.Method == http.MethodPost {
		set := func(param string, field *string, upper bool) {
			if form.Has(param) {
				v := form.Get(param)
				if upper {
					v = strings.ToUpper(v)
				}
				*field = v
			}
		}
		set("FriendlyName", &n.FriendlyName, false)
		set("SmsUrl", &n.SmsURL, false)
		set("SmsMethod", &n.SmsMethod, true)
		set("VoiceUrl", &n.VoiceURL, false)
		set("VoiceMethod", &n.VoiceMethod, true)
		set("StatusCallback", &n.StatusCallback, false)
		set("StatusCallbackMethod", &n.StatusCallbackMethod, true)
		n.Updated = s.now().UTC()
	}
	res := s.phoneNumberResource(n)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, res)
}

// validateNumberUpdate checks the webhook parameters of an update the way
// Twilio does and returns the HTTP status, error code and message of the
// first problem (code 0 when there is none). An empty URL is allowed: it
// clears the setting.
func validateNumberUpdate(f url.Values) (status, code int, msg string) {
	for _, p := range []string{"SmsUrl", "VoiceUrl", "SmsFallbackUrl", "VoiceFallbackUrl"} {
		if v := f.Get(p); v != "" && !httpURL(v) {
			return http.StatusBadRequest, CodeInvalidURL, fmt.Sprintf("%s is not valid: %s", p, v)
		}
	}
	if v := f.Get("StatusCallback"); v != "" && !httpURL(v) {
		return http.StatusBadRequest, CodeInvalidCallbackURL, fmt.Sprintf("StatusCallback is not valid: %s", v)
	}
	for _, p := range []string{"SmsMethod", "VoiceMethod", "StatusCallbackMethod", "SmsFallbackMethod", "VoiceFallbackMethod"} {
		if f.Has(p) {
			switch strings.ToUpper(f.Get(p)) {
			case http.MethodGet, http.MethodPost:
			default:
				return http.StatusBadRequest, CodeInvalidMethod, fmt.Sprintf("%s must be GET or POST, not %q", p, f.Get(p))
			}
		}
	}
	return 0, 0, ""
}

// handleMessagingServices is GET /v1/Services on the Messaging API: one
// page of the account's Messaging Services, with full page URLs in meta.
func (s *Server) handleMessagingServices(w http.ResponseWriter, r *http.Request) {
	if !s.authenticate(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// POST would create a service at Twilio.
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed")
		return
	}
	page, size := paging(r)
	s.mu.Lock()
	base := s.baseURL
	total := len(s.services)
	start, end := pageBounds(total, page, size)
	items := make([]serviceResource, 0, end-start)
	for _, sv := range s.services[start:end] {
		items = append(items, s.serviceResource(sv, base))
	}
	s.mu.Unlock()

	if base == DefaultBaseURL {
		base = twilio.DefaultMessagingBaseURL
	}
	pageURL := func(p int) string {
		return base + "/v1/Services?PageSize=" + strconv.Itoa(size) + "&Page=" + strconv.Itoa(p)
	}
	res := serviceList{Services: items, Meta: listMeta{
		Page: page, PageSize: size, FirstPageURL: pageURL(0), URL: pageURL(page), Key: "services",
	}}
	if end < total {
		res.Meta.NextPageURL = nullable(pageURL(page + 1))
	}
	if page > 0 {
		res.Meta.PreviousPageURL = nullable(pageURL(page - 1))
	}
	writeJSON(w, http.StatusOK, res)
}

// paging reads PageSize (1 to 1000, default 50) and Page (from 0) from the
// query. Twilio's answer to a malformed value is not documented, so the
// stand-in does not guess at one: it falls back to the default, and caps
// PageSize at the documented maximum.
func paging(r *http.Request) (page, size int) {
	q := r.URL.Query()
	size = defaultPageSize
	if n, err := strconv.Atoi(q.Get("PageSize")); err == nil && n >= 1 {
		size = min(n, maxPageSize)
	}
	if n, err := strconv.Atoi(q.Get("Page")); err == nil && n >= 0 {
		page = n
	}
	return page, size
}

// pageBounds is the slice [start:end) of total items that page page of
// size items covers; empty past the end.
func pageBounds(total, page, size int) (start, end int) {
	if page > total/size {
		return total, total
	}
	start = min(page*size, total)
	return start, min(start+size, total)
}

// friendlyName is the name Twilio gives a number by default: "(415)
// 555-0100" for a North American number, the number itself otherwise.
func friendlyName(e164 string) string {
	if len(e164) == 12 && strings.HasPrefix(e164, "+1") {
		d := e164[2:]
		return "(" + d[:3] + ") " + d[3:6] + "-" + d[6:]
	}
	return e164
}

// phoneNumberList is Twilio's list page of IncomingPhoneNumbers.
type phoneNumberList struct {
	End             int                   `json:"end"`
	FirstPageURI    string                `json:"first_page_uri"`
	Numbers         []phoneNumberResource `json:"incoming_phone_numbers"`
	NextPageURI     *string               `json:"next_page_uri"`
	Page            int                   `json:"page"`
	PageSize        int                   `json:"page_size"`
	PreviousPageURI *string               `json:"previous_page_uri"`
	Start           int                   `json:"start"`
	URI             string                `json:"uri"`
}

// phoneNumberResource is Twilio's IncomingPhoneNumber resource, fields in
// Twilio's order; the stand-in models no TwiML Apps, trunks or addresses.
type phoneNumberResource struct {
	AccountSID           string          `json:"account_sid"`
	AddressRequirements  string          `json:"address_requirements"`
	APIVersion           string          `json:"api_version"`
	Beta                 bool            `json:"beta"`
	Capabilities         map[string]bool `json:"capabilities"`
	DateCreated          string          `json:"date_created"`
	DateUpdated          string          `json:"date_updated"`
	FriendlyName         string          `json:"friendly_name"`
	PhoneNumber          string          `json:"phone_number"`
	Origin               string          `json:"origin"`
	SID                  string          `json:"sid"`
	SmsApplicationSID    string          `json:"sms_application_sid"`
	SmsFallbackMethod    string          `json:"sms_fallback_method"`
	SmsFallbackURL       string          `json:"sms_fallback_url"`
	SmsMethod            string          `json:"sms_method"`
	SmsURL               string          `json:"sms_url"`
	StatusCallback       string          `json:"status_callback"`
	StatusCallbackMethod string          `json:"status_callback_method"`
	TrunkSID             *string         `json:"trunk_sid"`
	URI                  string          `json:"uri"`
	VoiceApplicationSID  string          `json:"voice_application_sid"`
	VoiceCallerIDLookup  bool            `json:"voice_caller_id_lookup"`
	VoiceFallbackMethod  string          `json:"voice_fallback_method"`
	VoiceFallbackURL     string          `json:"voice_fallback_url"`
	VoiceMethod          string          `json:"voice_method"`
	VoiceURL             string          `json:"voice_url"`
	Status               string          `json:"status"`
}

// phoneNumberResource describes n. Callers hold s.mu.
func (s *Server) phoneNumberResource(n *Number) phoneNumberResource {
	return phoneNumberResource{
		AccountSID:           s.accountSID,
		AddressRequirements:  "none",
		APIVersion:           APIVersion,
		Capabilities:         map[string]bool{"voice": true, "sms": true, "mms": true, "fax": false},
		DateCreated:          n.Created.Format(time.RFC1123Z),
		DateUpdated:          n.Updated.Format(time.RFC1123Z),
		FriendlyName:         n.FriendlyName,
		PhoneNumber:          n.PhoneNumber,
		Origin:               "twilio",
		SID:                  n.SID,
		SmsFallbackMethod:    http.MethodPost,
		SmsMethod:            n.SmsMethod,
		SmsURL:               n.SmsURL,
		StatusCallback:       n.StatusCallback,
		StatusCallbackMethod: n.StatusCallbackMethod,
		URI:                  "/" + APIVersion + "/Accounts/" + s.accountSID + "/IncomingPhoneNumbers/" + n.SID + ".json",
		VoiceFallbackMethod:  http.MethodPost,
		VoiceMethod:          n.VoiceMethod,
		VoiceURL:             n.VoiceURL,
		Status:               "in-use",
	}
}

// serviceList is a Messaging API v1 list page of Services.
type serviceList struct {
	Services []serviceResource `json:"services"`
	Meta     listMeta          `json:"meta"`
}

// listMeta is the v1 APIs' paging block: full URLs, null at either end.
type listMeta struct {
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	FirstPageURL    string  `json:"first_page_url"`
	PreviousPageURL *string `json:"previous_page_url"`
	URL             string  `json:"url"`
	NextPageURL     *string `json:"next_page_url"`
	Key             string  `json:"key"`
}

// serviceResource is the Messaging Service resource, as Twilio creates
// one with defaults.
type serviceResource struct {
	AccountSID                string            `json:"account_sid"`
	AreaCodeGeomatch          bool              `json:"area_code_geomatch"`
	DateCreated               string            `json:"date_created"`
	DateUpdated               string            `json:"date_updated"`
	FallbackMethod            string            `json:"fallback_method"`
	FallbackURL               *string           `json:"fallback_url"`
	FriendlyName              string            `json:"friendly_name"`
	InboundMethod             string            `json:"inbound_method"`
	InboundRequestURL         *string           `json:"inbound_request_url"`
	Links                     map[string]string `json:"links"`
	MmsConverter              bool              `json:"mms_converter"`
	SID                       string            `json:"sid"`
	SmartEncoding             bool              `json:"smart_encoding"`
	StatusCallback            *string           `json:"status_callback"`
	StickySender              bool              `json:"sticky_sender"`
	URL                       string            `json:"url"`
	Usecase                   string            `json:"usecase"`
	UseInboundWebhookOnNumber bool              `json:"use_inbound_webhook_on_number"`
	ValidityPeriod            int               `json:"validity_period"`
}

func (s *Server) serviceResource(sv messagingService, base string) serviceResource {
	if base == DefaultBaseURL {
		base = twilio.DefaultMessagingBaseURL
	}
	u := base + "/v1/Services/" + sv.sid
	date := sv.created.Format(time.RFC3339) // v1 APIs date in ISO 8601
	return serviceResource{
		AccountSID:       s.accountSID,
		AreaCodeGeomatch: true,
		DateCreated:      date,
		DateUpdated:      date,
		FallbackMethod:   http.MethodPost,
		FriendlyName:     sv.name,
		InboundMethod:    http.MethodPost,
		Links:            map[string]string{"phone_numbers": u + "/PhoneNumbers"},
		MmsConverter:     true,
		SID:              sv.sid,
		SmartEncoding:    true,
		StickySender:     true,
		URL:              u,
		Usecase:          "undeclared",
		ValidityPeriod:   14400,
	}
}
