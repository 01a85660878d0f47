// Package server wires HTTP: webhooks and forms, the agent API, health and
// metrics, with the middleware every request goes through. It is the only
// place error codes become HTTP statuses.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/metrics"
	"github.com/switchboard-inbox/switchboard/web"
)

// Server serves Switchboard's HTTP endpoints.
type Server struct {
	Inbox   *inbox.Service
	Queue   switchboard.Queue
	Metrics *metrics.Metrics
	Logger  *slog.Logger

	// Webhooks maps "METHOD /path" patterns to channel handlers
	// (POST /forms/{form}, POST /webhooks/twilio/sms, ...).
	Webhooks map[string]http.Handler
	// ChannelHealth, when set, adds the provider connections' health to
	// /healthz for admins.
	ChannelHealth func(ctx context.Context, actor switchboard.Actor) (any, error)
	// BlobHandler serves local blob URLs under /blobs/ when set.
	BlobHandler http.Handler
	// Pages, when set, serves the agent workspace (docs/design.md §6.3);
	// without it / says where the API is.
	Pages *web.Pages
	// Realtime serves the agents' socket, GET /api/v1/realtime, when set.
	Realtime http.Handler
	// MetricsToken, when set, lets its bearer read /metrics here.
	MetricsToken string
	// PublicURL is the base URL browsers use (SWITCHBOARD_PUBLIC_URL):
	// session cookies are Secure when it is https, and a session's
	// state changes and socket must come from its origin.
	PublicURL string
	// TrustProxy takes the client's address, for the sign-in throttle,
	// from the last X-Forwarded-For entry: set it only behind exactly one
	// proxy that appends to it.
	TrustProxy bool
	// APITimeout bounds each agent API request, and every database read
	// it makes (default 30 s); a request whose client goes away is
	// cancelled at once.
	APITimeout time.Duration
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Metrics == nil {
		s.Metrics = metrics.New()
	}
	if s.APITimeout <= 0 {
		s.APITimeout = 30 * time.Second
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	if s.Pages != nil {
		mux.HandleFunc("GET /csat/{token}", s.csatRate)
		mux.HandleFunc("GET /csat/{token}/unsubscribe", s.csatUnsubscribe)
		mux.HandleFunc("POST /csat/{token}/unsubscribe", s.csatUnsubscribe)
	}
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		// What is queued, refused and failing is for operators: served
		// here only to the bearer of the metrics token (or on a separate
		// listen address; see MetricsHandler).
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case s.MetricsToken == "":
			writeError(w, r, s.Logger, switchboard.Errorf(switchboard.ENOTFOUND, "metrics are not served here: set SWITCHBOARD_METRICS_TOKEN or SWITCHBOARD_METRICS_ADDR"))
		case !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.MetricsToken)) != 1:
			writeError(w, r, s.Logger, switchboard.Errorf(switchboard.EUNAUTHORIZED, "metrics need Authorization: Bearer <SWITCHBOARD_METRICS_TOKEN>"))
		default:
			s.MetricsHandler().ServeHTTP(w, r)
		}
	})
	for pattern, h := range s.Webhooks {
		mux.Handle(pattern, h)
	}
	if s.BlobHandler != nil {
		mux.Handle("GET /blobs/", s.BlobHandler)
	}
	if s.Realtime != nil {
		mux.Handle("GET /api/v1/realtime", s.Realtime)
	}
	s.routeAPI(mux)
	s.routePages(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, s.Logger, switchboard.Errorf(switchboard.EMETHOD, "%s takes %s, not %s", r.URL.Path, strings.Join(allow, " or "), r.Method))
			return
		}
		writeError(w, r, s.Logger, switchboard.Errorf(switchboard.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
	})
	return s.middleware(mux)
}

// MetricsHandler serves the metrics in Prometheus' text format, to be
// mounted on a listen address of its own that only operators reach.
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.Metrics.Registry.Write(w)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := map[string]any{"status": "ok"}, http.StatusOK
	// The endpoint is public: say what is down, log why (driver errors
	// name hosts and users).
	if err := s.Inbox.Ping(ctx); err != nil {
		s.Logger.Error("healthz: database", "err", err)
		status["status"], status["database"], code = "unavailable", "unavailable", http.StatusServiceUnavailable
	}
	if depth, err := s.Queue.Depth(ctx); err != nil {
		s.Logger.Error("healthz: queue", "err", err)
		status["status"], status["queue"], code = "unavailable", "unavailable", http.StatusServiceUnavailable
	} else {
		status["queue_depth"] = depth
	}
	// Admins see each provider connection's health too.
	if s.ChannelHealth != nil && (r.Header.Get("Authorization") != "" || hasSessionCookie(r)) {
		if id, err := s.identify(ctx, r); err == nil && id.actor.Role.AtLeast(switchboard.RoleAdmin) {
			if h, err := s.ChannelHealth(ctx, id.actor); err == nil {
				status["channels"] = h
			} else {
				s.Logger.Warn("healthz: channels", "err", err)
			}
		}
	}
	writeJSON(w, code, status)
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyAgent
)

// statusRecorder remembers the status code for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// middleware adds a request id, recovers panics into 500s, and logs
// requests that failed or were slow (logging every 2xx would cost more
// than serving it at webhook rates).
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		rec := &statusRecorder{ResponseWriter: w}
		ctx := context.WithValue(r.Context(), keyRequestID, id)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Logger.Error("http: panic", "request_id", id, "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(rec, r, s.Logger, errors.New("panic"))
				}
			}
			d := time.Since(start)
			if rec.status >= 400 || d > time.Second {
				level := slog.LevelInfo
				if rec.status >= 500 {
					level = slog.LevelError
				}
				s.Logger.Log(ctx, level, "http", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", d)
			}
		}()
		if what := unreadable(r); what != "" {
			// A NUL reaches no database (PostgreSQL refuses it), and
			// invalid UTF-8 no page: say so instead of failing later.
			writeError(rec, r, s.Logger, switchboard.Errorf(switchboard.EINVALID, "%s holds a NUL or control character, or invalid UTF-8", what))
			return
		}
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// allowed returns the methods routes other than the catch-all serve r's
// path with: the catch-all answers any method, which would turn a wrong
// method into a 404.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

// unreadable names the part of the URL no handler can take: a path with
// a control character, or a query with a NUL or invalid UTF-8.
func unreadable(r *http.Request) string {
	if !utf8.ValidString(r.URL.Path) || strings.IndexFunc(r.URL.Path, unicode.IsControl) >= 0 {
		return "the path"
	}
	for k, vs := range r.URL.Query() {
		for _, v := range append(vs, k) {
			if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
				return fmt.Sprintf("query parameter %q", switchboard.CleanText(k))
			}
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// httpStatus maps an error code to its HTTP status.
func httpStatus(code string) int {
	switch code {
	case switchboard.EINVALID:
		return http.StatusBadRequest
	case switchboard.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case switchboard.EFORBIDDEN:
		return http.StatusForbidden
	case switchboard.ENOTFOUND:
		return http.StatusNotFound
	case switchboard.ECONFLICT:
		return http.StatusConflict
	case switchboard.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case switchboard.EPOLICY:
		return http.StatusUnprocessableEntity
	case switchboard.ERATELIMIT:
		return http.StatusTooManyRequests
	case switchboard.EMETHOD:
		return http.StatusMethodNotAllowed
	case switchboard.EMEDIATYPE:
		return http.StatusUnsupportedMediaType
	case switchboard.ETIMEOUT:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers {"error": {"code", "message"[, "details"]}}. Internal
// errors are logged and their text is not shown to the caller.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := switchboard.ErrorCode(err)
	status := httpStatus(code)
	if status == http.StatusInternalServerError {
		id, _ := r.Context().Value(keyRequestID).(string)
		log.Error("http: internal error", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := map[string]any{"code": code, "message": switchboard.ErrorMessage(err)}
	var e *switchboard.Error
	if errors.As(err, &e) && e.Details != nil {
		body["details"] = e.Details
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
	}
	writeJSON(w, status, map[string]any{"error": body})
}

// parseLimit reads a page size.
func parseLimit(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 200 {
		return 0, switchboard.Errorf(switchboard.EINVALID, "limit must be an integer from 1 to 200")
	}
	return n, nil
}

// ErrorHandler answers every request with err, as the API answers errors
// (the channels' webhook routes while their channel is off).
func ErrorHandler(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, slog.Default(), err)
	})
}
