package inbox

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
)

// Browser sign-in (docs/design.md §6.3): passwords, sessions, the
// throttle on wrong passwords, invitations.

const (
	// SessionIdle is how long a browser session lasts unused; each use
	// (recorded at most every SessionTouch) moves its end.
	SessionIdle  = 7 * 24 * time.Hour
	SessionTouch = 5 * time.Minute

	// A sign-in is refused, right password or not, once an account has
	// had LoginAccountLimit failures, or an address LoginAddressLimit,
	// within LoginWindow: guessing costs a window per handful of tries,
	// and one address cannot lock out every account.
	LoginWindow       = 15 * time.Minute
	LoginAccountLimit = 5
	LoginAddressLimit = 20

	// MinPassword is the shortest password accepted.
	MinPassword = 10
	// InviteTTL is how long an invitation link works.
	InviteTTL = 7 * 24 * time.Hour
)

// argon2id parameters: OWASP's second recommended set (19 MiB, two
// passes), a few tens of milliseconds per sign-in on one core.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns the PHC-format argon2id hash of a password.
func HashPassword(password string) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

func checkPassword(password string) error {
	switch {
	case utf8.RuneCountInString(password) < MinPassword:
		return switchboard.Errorf(switchboard.EINVALID, "a password needs at least %d characters", MinPassword)
	case len(password) > 1024:
		return switchboard.Errorf(switchboard.EINVALID, "a password may have at most 1024 bytes")
	}
	return nil
}

// dummyHash is verified against when the account is unknown or has no
// password, so that the answer takes as long as for a real one.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("no such account, no such password")
	return h
})

// verifyPassword reports whether password matches a PHC argon2id hash,
// reading the parameters from the hash so that they may change later.
func verifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil || mem > 1<<20 || iters > 16 || threads == 0 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Session is a signed-in browser: who, and the CSRF token its pages carry.
type Session struct {
	Actor switchboard.Actor
	CSRF  string
}

// Login checks an e-mail and password and opens a browser session,
// returning its cookie value. addr is the client's address, for the
// throttle. Every refusal says the same thing, whether the account
// exists or not.
func (s *Service) Login(ctx context.Context, email, password, addr string) (token string, sess Session, err error) {
	email = strings.ToLower(strings.TrimSpace(email))
	account, address := "a:"+email, "ip:"+addr
	now := s.clock.Now()
	fails, err := s.store.LoginFailures(ctx, now.Add(-LoginWindow), account, address)
	if err != nil {
		return "", sess, err
	}
	if fails[account] >= LoginAccountLimit || fails[address] >= LoginAddressLimit {
		return "", sess, switchboard.Errorf(switchboard.ERATELIMIT, "too many failed sign-ins: try again in %d minutes", int(LoginWindow/time.Minute))
	}
	a, hash, err := s.store.AgentCredentials(ctx, email)
	if err != nil && switchboard.ErrorCode(err) != switchboard.ENOTFOUND {
		return "", sess, err
	}
	ok := err == nil && hash != ""
	if !ok {
		hash = dummyHash()
	}
	if !verifyPassword(hash, password) || !ok {
		if err := s.store.RecordLoginFailure(ctx, now.Add(-LoginWindow), account, address); err != nil {
			return "", sess, err
		}
		return "", sess, switchboard.Errorf(switchboard.EUNAUTHORIZED, "wrong e-mail or password")
	}
	if err := s.store.ClearLoginFailures(ctx, account); err != nil {
		return "", sess, err
	}
	token, csrf, err := s.store.CreateSession(ctx, a.ID, now.Add(SessionIdle))
	if err != nil {
		return "", sess, err
	}
	return token, Session{Actor: a.Actor(), CSRF: csrf}, nil
}

// SessionActor returns the session a cookie value names, extending it
// when it was last recorded more than SessionTouch ago.
func (s *Service) SessionActor(ctx context.Context, token string) (Session, error) {
	if token == "" {
		return Session{}, switchboard.Errorf(switchboard.EUNAUTHORIZED, "not signed in")
	}
	ws, err := s.store.Session(ctx, token)
	if err != nil {
		return Session{}, err
	}
	now := s.clock.Now()
	if !now.Before(ws.ExpiresAt) {
		return Session{}, switchboard.Errorf(switchboard.EUNAUTHORIZED, "the session has expired: sign in again")
	}
	if now.Sub(ws.LastSeenAt) >= SessionTouch {
		if err := s.store.TouchSession(ctx, token, now.Add(SessionIdle)); err != nil {
			return Session{}, err
		}
	}
	return Session{Actor: ws.Agent.Actor(), CSRF: ws.CSRF}, nil
}

// Logout ends the session a cookie value names.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.store.DeleteSession(ctx, token)
}

// ChangePassword replaces the actor's password after checking the
// current one, and signs the agent out everywhere but in keep (the
// session making the change).
func (s *Service) ChangePassword(ctx context.Context, actor switchboard.Actor, current, next, keep string) error {
	hash, err := s.store.PasswordHash(ctx, actor.ID)
	if err != nil {
		return err
	}
	if hash != "" && !verifyPassword(hash, current) {
		return switchboard.Errorf(switchboard.EINVALID, "the current password is wrong")
	}
	newHash, err := HashPassword(next)
	if err != nil {
		return err
	}
	return s.store.SetPassword(ctx, actor.ID, newHash, keep)
}

// SetPassword sets an agent's password (admins, or Switchboard for the
// command line) and ends the agent's sessions.
func (s *Service) SetPassword(ctx context.Context, actor switchboard.Actor, agentID, password string) error {
	if err := require(actor, switchboard.RoleAdmin, "set other agents' passwords"); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return s.store.SetPassword(ctx, agentID, hash, "")
}

// Invite creates a one-time invitation for a new agent (admins) and
// returns its token, for the link the admin sends.
func (s *Service) Invite(ctx context.Context, actor switchboard.Actor, email, name string, role switchboard.Role) (string, error) {
	if err := require(actor, switchboard.RoleAdmin, "invite agents"); err != nil {
		return "", err
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if role == "" {
		role = switchboard.RoleAgent
	}
	switch {
	case !strings.Contains(email, "@"):
		return "", switchboard.Errorf(switchboard.EINVALID, "a valid e-mail is required")
	case !role.Valid():
		return "", switchboard.Errorf(switchboard.EINVALID, "unknown role %q", role)
	}
	if _, _, err := s.store.AgentCredentials(ctx, email); err == nil {
		return "", switchboard.Errorf(switchboard.ECONFLICT, "an agent with e-mail %s exists", email)
	}
	return s.store.CreateInvite(ctx, store.Invite{Email: email, Name: strings.TrimSpace(name), Role: role, InvitedBy: actor.ID, ExpiresAt: s.clock.Now().Add(InviteTTL)})
}

// PendingInvite returns the invitation a link's token names.
func (s *Service) PendingInvite(ctx context.Context, token string) (store.Invite, error) {
	return s.store.PendingInvite(ctx, token)
}

// AcceptInvite creates the invited agent with its password and signs it
// in; the link then no longer works.
func (s *Service) AcceptInvite(ctx context.Context, token, name, password string) (string, Session, error) {
	hash, err := HashPassword(password)
	if err != nil {
		return "", Session{}, err
	}
	a, err := s.store.AcceptInvite(ctx, token, name, hash)
	if err != nil {
		return "", Session{}, err
	}
	s.announceAgent(ctx, a)
	sessToken, csrf, err := s.store.CreateSession(ctx, a.ID, s.clock.Now().Add(SessionIdle))
	if err != nil {
		return "", Session{}, err
	}
	return sessToken, Session{Actor: a.Actor(), CSRF: csrf}, nil
}

// CannedResponse is a reply text agents insert with its "/shortcut".
type CannedResponse = store.CannedResponse

// CannedResponses lists the canned responses (every agent).
func (s *Service) CannedResponses(ctx context.Context, actor switchboard.Actor) ([]CannedResponse, error) {
	return s.store.CannedResponses(ctx)
}

// PutCannedResponse adds or replaces a canned response (admins).
func (s *Service) PutCannedResponse(ctx context.Context, actor switchboard.Actor, c CannedResponse) (CannedResponse, error) {
	if err := require(actor, switchboard.RoleAdmin, "edit canned responses"); err != nil {
		return c, err
	}
	c.Shortcut = strings.TrimPrefix(strings.TrimSpace(c.Shortcut), "/")
	c.Title, c.Body = strings.TrimSpace(c.Title), strings.TrimSpace(c.Body)
	switch {
	case c.Shortcut == "" || len(c.Shortcut) > 32 || strings.ContainsAny(c.Shortcut, " \t\n/"):
		return c, switchboard.Errorf(switchboard.EINVALID, "a shortcut is one word of up to 32 characters")
	case c.Body == "" || len(c.Body) > 16<<10:
		return c, switchboard.Errorf(switchboard.EINVALID, "a canned response needs a text of up to 16 KB")
	}
	if c.Title == "" {
		c.Title = c.Shortcut
	}
	return s.store.PutCannedResponse(ctx, c)
}

// DeleteCannedResponse removes a canned response (admins).
func (s *Service) DeleteCannedResponse(ctx context.Context, actor switchboard.Actor, id string) error {
	if err := require(actor, switchboard.RoleAdmin, "edit canned responses"); err != nil {
		return err
	}
	return s.store.DeleteCannedResponse(ctx, id)
}
