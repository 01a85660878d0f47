package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/web"
)

// The workspace's pages and sign-in (docs/design.md §6.3). The pages
// render in package web; here each is wrapped with the session check,
// CSRF and the error page.

// loginCSRFCookie carries the sign-in form's CSRF token before any
// session exists (a double-submit cookie): a foreign page cannot sign a
// browser into an account of its choosing.
const loginCSRFCookie = "sb_login"

func (s *Server) routePages(mux *http.ServeMux) {
	if s.Pages == nil {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("Switchboard is running. The agent API is under /api/v1; see the README.\n"))
		})
		return
	}
	mux.Handle("GET /static/", web.Static())
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /invite/{token}", s.inviteForm)
	mux.HandleFunc("POST /invite/{token}", s.acceptInvite)
	mux.Handle("POST /logout", s.page(s.logout))
	mux.Handle("POST /account/password", s.page(s.changePassword))
	for pattern, h := range s.Pages.Routes() {
		mux.Handle(pattern, s.page(h))
	}
}

// page requires a session (a browser without one is sent to sign in),
// checks CSRF on state changes, and renders errors as pages.
func (s *Server) page(h web.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.APITimeout)
		defer cancel()
		r = r.WithContext(ctx)
		var id identity
		var err error
		if c, cerr := r.Cookie(SessionCookie); cerr == nil && c.Value != "" {
			id, err = s.identify(ctx, r)
		} else {
			err = switchboard.Errorf(switchboard.EUNAUTHORIZED, "not signed in")
		}
		if err == nil {
			err = s.checkCSRF(r, id)
		}
		if err == nil {
			err = h(w, r, web.Request{Actor: id.actor, CSRF: id.csrf, Session: id.session})
		}
		if err != nil {
			s.pageError(w, r, err)
		}
	})
}

func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) && errors.Is(err, context.Canceled) {
		return // the browser went away (a closed tab): nobody to answer
	}
	code := switchboard.ErrorCode(err)
	status := httpStatus(code)
	if code == switchboard.EUNAUTHORIZED {
		if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" {
			s.clearSessionCookie(w)
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		// A fragment or a form of an expired session: htmx follows
		// HX-Redirect with a full navigation.
		w.Header().Set("HX-Redirect", "/login")
	}
	msg := switchboard.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		id, _ := r.Context().Value(keyRequestID).(string)
		s.Logger.Error("page: internal error", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "Something went wrong on our side; it has been logged (request " + id + ")."
	}
	s.Pages.ErrorPage(w, status, msg)
}

// loginToken returns the sign-in form's CSRF token, setting its cookie
// when the browser has none.
func (s *Server) loginToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCSRFCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	token := randomHex(24)
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteStrictMode})
	return token
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	d := web.LoginData{Next: localPath(r.URL.Query().Get("next")), CSRF: s.loginToken(w, r)}
	if r.URL.Query().Get("signed_out") != "" {
		d.Notice = "You are signed out."
	}
	if err := s.Pages.Login(w, http.StatusOK, d); err != nil {
		s.Logger.Error("login page", "err", err)
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	email, password, next := r.PostFormValue("email"), r.PostFormValue("password"), localPath(r.PostFormValue("next"))
	token := s.loginToken(w, r)
	again := func(status int, msg string) {
		if err := s.Pages.Login(w, status, web.LoginData{Error: msg, Email: email, Next: next, CSRF: token}); err != nil {
			s.Logger.Error("login page", "err", err)
		}
	}
	if sent := r.PostFormValue("csrf"); sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(token)) != 1 {
		again(http.StatusForbidden, "The form expired: sign in again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.APITimeout)
	defer cancel()
	sessToken, _, err := s.Inbox.Login(ctx, email, password, s.clientAddr(r))
	if err != nil {
		code := switchboard.ErrorCode(err)
		if code == switchboard.EINTERNAL {
			s.Logger.Error("login", "err", err)
			again(http.StatusInternalServerError, "Signing in failed on our side; try again.")
			return
		}
		again(httpStatus(code), switchboard.ErrorMessage(err))
		return
	}
	s.setSessionCookie(w, sessToken)
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, req web.Request) error {
	c, _ := r.Cookie(SessionCookie)
	if err := s.Inbox.Logout(r.Context(), c.Value); err != nil {
		return err
	}
	s.clearSessionCookie(w)
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
	return nil
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, req web.Request) error {
	c, _ := r.Cookie(SessionCookie)
	err := s.Inbox.ChangePassword(r.Context(), req.Actor, r.PostFormValue("current"), r.PostFormValue("new"), c.Value)
	if err != nil {
		if switchboard.ErrorCode(err) == switchboard.EINTERNAL {
			return err
		}
		http.Redirect(w, r, "/account?error="+url.QueryEscape(switchboard.ErrorMessage(err)), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/account?notice="+url.QueryEscape("Password changed; your other sessions are signed out."), http.StatusSeeOther)
	return nil
}

func (s *Server) inviteForm(w http.ResponseWriter, r *http.Request) {
	d := web.InviteData{Token: r.PathValue("token"), CSRF: s.loginToken(w, r)}
	status := http.StatusOK
	inv, err := s.Inbox.PendingInvite(r.Context(), d.Token)
	if err != nil {
		status, d.Error = httpStatus(switchboard.ErrorCode(err)), switchboard.ErrorMessage(err)
	} else {
		d.Email, d.Name = inv.Email, inv.Name
	}
	if err := s.Pages.Invite(w, status, d); err != nil {
		s.Logger.Error("invite page", "err", err)
	}
}

func (s *Server) acceptInvite(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	d := web.InviteData{Token: r.PathValue("token"), Name: r.PostFormValue("name"), CSRF: s.loginToken(w, r)}
	fail := func(status int, msg string) {
		d.Error = msg
		if inv, err := s.Inbox.PendingInvite(r.Context(), d.Token); err == nil {
			d.Email = inv.Email
		}
		if err := s.Pages.Invite(w, status, d); err != nil {
			s.Logger.Error("invite page", "err", err)
		}
	}
	if sent := r.PostFormValue("csrf"); sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(d.CSRF)) != 1 {
		fail(http.StatusForbidden, "The form expired: try again.")
		return
	}
	token, _, err := s.Inbox.AcceptInvite(r.Context(), d.Token, d.Name, r.PostFormValue("password"))
	if err != nil {
		fail(httpStatus(switchboard.ErrorCode(err)), switchboard.ErrorMessage(err))
		return
	}
	s.setSessionCookie(w, token)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// localPath keeps a "next" that stays on this site: a path, never
// another host ("//evil.example", "/\evil.example").
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return ""
	}
	return p
}
