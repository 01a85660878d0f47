package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/internal/netaddr"
)

// Browser sessions (docs/design.md §6.3): the cookie, CSRF, and who a
// request is. Scripts keep their bearer tokens; a request with a token
// never looks at cookies.

// SessionCookie names the browser session's cookie.
const SessionCookie = "sb_session"

// CSRFHeader carries the session's CSRF token on the workspace's API
// calls; forms carry it in the field "csrf".
const CSRFHeader = "X-CSRF-Token"

// identity is who a request comes from.
type identity struct {
	actor   switchboard.Actor
	session string // the session cookie's value; "" for a bearer token
	csrf    string
}

// identify resolves a bearer token, else the session cookie.
func (s *Server) identify(ctx context.Context, r *http.Request) (identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			return identity{}, switchboard.Errorf(switchboard.EUNAUTHORIZED, "the Authorization header must be Bearer <token>")
		}
		actor, err := s.Inbox.Authenticate(ctx, token)
		return identity{actor: actor}, err
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return identity{}, switchboard.Errorf(switchboard.EUNAUTHORIZED, "sign in, or send Authorization: Bearer <token>")
	}
	sess, err := s.Inbox.SessionActor(ctx, c.Value)
	if err != nil {
		return identity{}, err
	}
	return identity{actor: sess.Actor, session: c.Value, csrf: sess.CSRF}, nil
}

// checkCSRF refuses a state-changing request a session cookie carries
// unless it also carries the session's CSRF token, which only the
// workspace's own pages know, and, when the browser says where it comes
// from, comes from this site.
func (s *Server) checkCSRF(r *http.Request, id identity) error {
	if id.session == "" || safeMethod(r.Method) {
		return nil
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "a request from another site may not change anything here")
	}
	if o := r.Header.Get("Origin"); o != "" && !s.sameOrigin(r, o) {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "a request from %s may not change anything here", switchboard.CleanText(o))
	}
	token := r.Header.Get(CSRFHeader)
	if token == "" {
		if mt := r.Header.Get("Content-Type"); strings.HasPrefix(mt, "application/x-www-form-urlencoded") || strings.HasPrefix(mt, "multipart/form-data") {
			token = r.PostFormValue("csrf")
		}
	}
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(id.csrf)) != 1 {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "the CSRF token is missing or wrong: reload the page")
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether an Origin header names this deployment: the
// public URL's origin, or, without one, the host the request was sent to.
func (s *Server) sameOrigin(r *http.Request, origin string) bool {
	want := ""
	if s.PublicURL != "" {
		if u, err := url.Parse(s.PublicURL); err == nil {
			want = u.Scheme + "://" + u.Host
		}
	} else {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		want = scheme + "://" + r.Host
	}
	return strings.EqualFold(strings.TrimSuffix(origin, "/"), want)
}

// AuthenticateSocket is the agent socket's check (docs/design.md §6.1): a
// bearer token from any client, or the session cookie from a page of this
// deployment (a foreign page's socket would ride on the cookie).
func (s *Server) AuthenticateSocket(r *http.Request) (switchboard.Actor, error) {
	id, err := s.identify(r.Context(), r)
	if err != nil {
		return switchboard.Actor{}, err
	}
	if id.session != "" && !s.sameOrigin(r, r.Header.Get("Origin")) {
		return switchboard.Actor{}, switchboard.Errorf(switchboard.EFORBIDDEN, "a session's socket must come from %s", s.PublicURL)
	}
	return id.actor, nil
}

// secureCookies reports whether cookies are marked Secure: when the
// public URL is https (a plain-http deployment, the demo, could not
// keep them otherwise).
func (s *Server) secureCookies() bool { return strings.HasPrefix(s.PublicURL, "https://") }

func (s *Server) setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.secureCookies(),
		SameSite: http.SameSiteLaxMode, MaxAge: int(inbox.SessionIdle.Seconds()),
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// clientAddr is the client's address for the sign-in throttle (see
// netaddr.Client; SWITCHBOARD_TRUST_PROXY sets TrustProxy).
func (s *Server) clientAddr(r *http.Request) string {
	_, key := netaddr.Client(r, s.TrustProxy)
	return key
}

func hasSessionCookie(r *http.Request) bool {
	_, err := r.Cookie(SessionCookie)
	return err == nil
}
