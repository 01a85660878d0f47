package inbox

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
)

// Channel settings: the providers' credentials and ids an admin edits in
// the workspace, stored in the database, secrets sealed and write-only
// (docs/design.md §4.2). A setting given in the environment wins and
// cannot be edited here: a headless deployment stays configured by its
// environment.

// SettingSpec describes one editable setting. Name is the
// SWITCHBOARD_* variable without its prefix.
type SettingSpec struct {
	Name   string
	Group  string // "twilio", "meta" or "email"
	Label  string
	Secret bool
	Help   string
}

// Setting groups, one per provider connection.
const (
	GroupTwilio = "twilio"
	GroupMeta   = "meta"
	GroupEmail  = "email"
)

// ChannelSettings are the settings the admin pages edit, in the order
// they show them.
var ChannelSettings = []SettingSpec{
	{Name: "TWILIO_ACCOUNT_SID", Group: GroupTwilio, Label: "Account SID", Help: "AC followed by 32 hexadecimal digits"},
	{Name: "TWILIO_AUTH_TOKEN", Group: GroupTwilio, Label: "Auth token", Secret: true},
	{Name: "TWILIO_FROM", Group: GroupTwilio, Label: "SMS number", Help: "our number, E.164 (+15551234567)"},
	{Name: "TWILIO_MESSAGING_SERVICE_SID", Group: GroupTwilio, Label: "Messaging Service SID", Help: "send through this service instead of a number"},
	{Name: "VOICE_GREETING", Group: GroupTwilio, Label: "Voicemail greeting"},
	{Name: "META_APP_ID", Group: GroupMeta, Label: "App ID", Help: "the Meta app's id: needed to connect by Facebook Login and to check tokens"},
	{Name: "META_APP_SECRET", Group: GroupMeta, Label: "App secret", Secret: true, Help: "checks webhook signatures"},
	{Name: "META_VERIFY_TOKEN", Group: GroupMeta, Label: "Webhook verify token", Secret: true},
	{Name: "META_ACCESS_TOKEN", Group: GroupMeta, Label: "Access token (WhatsApp)", Secret: true, Help: "a system user's token for the WhatsApp Cloud API and media"},
	{Name: "WHATSAPP_PHONE_NUMBER_ID", Group: GroupMeta, Label: "WhatsApp phone number ID"},
	{Name: "WHATSAPP_BUSINESS_ACCOUNT_ID", Group: GroupMeta, Label: "WhatsApp Business Account ID", Help: "message templates are synced from it"},
	{Name: "MESSENGER_PAGE_ID", Group: GroupMeta, Label: "Facebook Page ID"},
	{Name: "MESSENGER_PAGE_TOKEN", Group: GroupMeta, Label: "Page access token", Secret: true, Help: "set by Connect Facebook; without it Messenger and Instagram use the access token"},
	{Name: "INSTAGRAM_ACCOUNT_ID", Group: GroupMeta, Label: "Instagram account ID"},
	{Name: "SMTP_URL", Group: GroupEmail, Label: "SMTP relay", Secret: true, Help: "smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465"},
	{Name: "EMAIL_FROM", Group: GroupEmail, Label: "From address", Help: "Acme Support <support@acme.example>"},
	{Name: "IMAP_URLS", Group: GroupEmail, Label: "IMAP mailboxes", Secret: true, Help: "comma-separated imaps://user:pass@host/INBOX"},
	{Name: "INBOUND_EMAIL_SECRET", Group: GroupEmail, Label: "Inbound e-mail webhook secret", Secret: true},
	{Name: "DKIM_SELECTOR", Group: GroupEmail, Label: "DKIM selector"},
	{Name: "DKIM_KEY", Group: GroupEmail, Label: "DKIM private key (PEM)", Secret: true, Help: "generate one below; SWITCHBOARD_DKIM_KEY_FILE in the environment takes its place"},
}

// settingSpec returns the spec of name.
func settingSpec(name string) (SettingSpec, bool) {
	i := slices.IndexFunc(ChannelSettings, func(s SettingSpec) bool { return s.Name == name })
	if i < 0 {
		return SettingSpec{}, false
	}
	return ChannelSettings[i], true
}

// SettingView is a setting as the admin pages show it: a secret's value
// never leaves the service, only whether it is set.
type SettingView struct {
	SettingSpec
	Set       bool
	Value     string // "" for secrets
	FromEnv   bool   // fixed by the environment; not editable here
	UpdatedBy string
	UpdatedAt time.Time
}

// SettingsHooks connect the settings to the process that applies them.
type SettingsHooks struct {
	// Env names the settings given in the environment (they win).
	Env map[string]bool
	// Check is given the stored settings as they would be after a change
	// and says what is wrong with them (nil: nothing): a change that
	// would leave a channel unusable is refused before it is stored.
	Check func(stored map[string]string) error
	// Changed is called after a change is committed.
	Changed func()
}

// SetSettingsHooks wires the settings to the process; call before serving.
func (s *Service) SetSettingsHooks(h SettingsHooks) { s.settingsHooks = h }

// sealer seals secrets with AES-256-GCM under a key derived from the
// configured one; the setting's name is the associated data, so a sealed
// value copied onto another setting does not open.
type sealer struct{ aead cipher.AEAD }

const sealedPrefix = "v1:"

func newSealer(key []byte) (*sealer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("inbox: the secrets key has %d bytes, want at least 32", len(key))
	}
	k, err := hkdf.Key(sha256.New, key, nil, "switchboard settings v1", 32)
	if err != nil {
		return nil, fmt.Errorf("inbox: derive the settings key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("inbox: settings cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("inbox: settings cipher: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(name, plain string) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), []byte(name)))
}

func (s *sealer) open(name, sealed string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, sealedPrefix))
	if err != nil || !strings.HasPrefix(sealed, sealedPrefix) || len(raw) < s.aead.NonceSize() {
		return "", fmt.Errorf("inbox: setting %s is not a sealed value", name)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return "", fmt.Errorf("inbox: setting %s does not open with this key (was SWITCHBOARD_BLOB_KEY changed?)", name)
	}
	return string(plain), nil
}

// StoredSettings returns the stored settings, secrets opened, for the
// process to apply. A secret that does not open is left out and reported
// in the error beside the rest.
func (s *Service) StoredSettings(ctx context.Context) (map[string]string, error) {
	rows, err := s.store.Settings(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	var errs []error
	for _, r := range rows {
		if !r.Secret {
			out[r.Name] = r.Value
			continue
		}
		if s.sealer == nil {
			errs = append(errs, fmt.Errorf("inbox: setting %s is sealed and no secrets key is configured", r.Name))
			continue
		}
		v, err := s.sealer.open(r.Name, r.Value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[r.Name] = v
	}
	return out, errors.Join(errs...)
}

// SettingsViews returns every channel setting as the admin pages show
// it (admins).
func (s *Service) SettingsViews(ctx context.Context, actor switchboard.Actor) ([]SettingView, error) {
	if err := require(actor, switchboard.RoleAdmin, "see the channels' settings"); err != nil {
		return nil, err
	}
	rows, err := s.store.Settings(ctx)
	if err != nil {
		return nil, err
	}
	stored := make(map[string]store.Setting, len(rows))
	for _, r := range rows {
		stored[r.Name] = r
	}
	out := make([]SettingView, 0, len(ChannelSettings))
	for _, spec := range ChannelSettings {
		v := SettingView{SettingSpec: spec, FromEnv: s.settingsHooks.Env[spec.Name]}
		if r, ok := stored[spec.Name]; ok && !v.FromEnv {
			v.Set, v.UpdatedBy, v.UpdatedAt = true, r.UpdatedBy, r.UpdatedAt
			if !spec.Secret {
				v.Value = r.Value
			}
		}
		v.Set = v.Set || v.FromEnv
		out = append(out, v)
	}
	return out, nil
}

// SettingsChange is what an admin submits: new values (a blank secret
// keeps the stored one, a blank plain setting clears it) and secrets to
// clear.
type SettingsChange struct {
	Set   map[string]string
	Clear []string
}

// PutSettings applies an admin's change to the channel settings, checked
// as a whole before anything is stored, and writes it to the audit log.
// It reports the names that changed.
func (s *Service) PutSettings(ctx context.Context, actor switchboard.Actor, c SettingsChange) ([]string, error) {
	if err := require(actor, switchboard.RoleAdmin, "change the channels' settings"); err != nil {
		return nil, err
	}
	current, err := s.StoredSettings(ctx)
	if err != nil {
		// A secret that no longer opens can still be replaced or cleared.
		s.log.Warn("settings: stored secret unreadable", "err", err)
	}
	next := make(map[string]string, len(current))
	for k, v := range current {
		next[k] = v
	}
	var changes []store.SettingChange
	var audit []store.AuditEntry
	names := make([]string, 0, len(c.Set)+len(c.Clear))
	for name := range c.Set {
		names = append(names, name)
	}
	names = append(names, c.Clear...)
	sort.Strings(names)
	names = slices.Compact(names)
	var changed []string
	for _, name := range names {
		spec, ok := settingSpec(name)
		if !ok {
			return nil, switchboard.Errorf(switchboard.EINVALID, "%s is not a channel setting", name)
		}
		v, setting := c.Set[name]
		v = strings.TrimSpace(v)
		clear := slices.Contains(c.Clear, name) || (!spec.Secret && setting && v == "")
		if !clear && (!setting || v == "") {
			continue // a blank secret keeps what is stored
		}
		if s.settingsHooks.Env[name] {
			return nil, switchboard.Errorf(switchboard.EINVALID, "%s is set by SWITCHBOARD_%s in the environment: change it there", spec.Label, name)
		}
		old, had := current[name]
		switch {
		case clear && !had:
			continue
		case clear:
			delete(next, name)
			changes = append(changes, store.SettingChange{Name: name, Delete: true})
			audit = append(audit, s.auditEntry(actor, "setting.clear", name, "cleared"))
		case had && old == v:
			continue
		default:
			next[name] = v
			stored := v
			detail := "set to " + v
			if spec.Secret {
				if s.sealer == nil {
					return nil, switchboard.Errorf(switchboard.EINVALID, "no secrets key is configured: secrets cannot be stored")
				}
				stored, detail = s.sealer.seal(name, v), "replaced"
				if !had {
					detail = "set"
				}
			}
			changes = append(changes, store.SettingChange{Name: name, Value: stored, Secret: spec.Secret})
			audit = append(audit, s.auditEntry(actor, "setting.set", name, detail))
		}
		changed = append(changed, name)
	}
	if len(changes) == 0 {
		return nil, nil
	}
	if s.settingsHooks.Check != nil {
		if err := s.settingsHooks.Check(next); err != nil {
			return nil, switchboard.Errorf(switchboard.EINVALID, "%s", err.Error())
		}
	}
	if err := s.store.PutSettings(ctx, actor.ID, changes, audit); err != nil {
		return nil, err
	}
	if s.settingsHooks.Changed != nil {
		s.settingsHooks.Changed()
	}
	return changed, nil
}

func (s *Service) auditEntry(actor switchboard.Actor, action, target, detail string) store.AuditEntry {
	return store.AuditEntry{ActorID: actor.ID, Actor: actor.Name, Action: action, Target: target, Detail: detail}
}

// Audit records something an admin did outside the settings (a provider
// registration, a connection), for the audit log. Never put a secret in
// detail.
func (s *Service) Audit(ctx context.Context, actor switchboard.Actor, action, target, detail string) error {
	return s.store.AppendAudit(ctx, s.auditEntry(actor, action, target, detail))
}

// AuditEntry is one line of the audit log.
type AuditEntry = store.AuditEntry

// AuditLog returns up to limit audit entries, newest first, older than
// before ("" for the newest) (admins).
func (s *Service) AuditLog(ctx context.Context, actor switchboard.Actor, before string, limit int) ([]AuditEntry, error) {
	if err := require(actor, switchboard.RoleAdmin, "read the audit log"); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	return s.store.AuditLog(ctx, before, limit)
}

// oauthTTL bounds a sign-in with a provider, from its start to the
// admin's choice of what to connect.
const oauthTTL = 15 * time.Minute

// BeginOAuth starts a sign-in with provider for the admin's browser
// session and returns the state parameter that binds the provider's
// answer to it (admins).
func (s *Service) BeginOAuth(ctx context.Context, actor switchboard.Actor, session, provider string) (string, error) {
	if err := require(actor, switchboard.RoleAdmin, "connect channels"); err != nil {
		return "", err
	}
	if session == "" {
		return "", switchboard.Errorf(switchboard.EFORBIDDEN, "connecting a channel needs a signed-in browser")
	}
	state := randomState()
	return state, s.store.PutOAuthState(ctx, state, session, actor.ID, provider, s.clock.Now().Add(oauthTTL))
}

// FinishOAuth accepts the provider's answer carrying state once, for the
// session and admin that began it; a forged, replayed or expired state is
// refused.
func (s *Service) FinishOAuth(ctx context.Context, actor switchboard.Actor, session, provider, state string) error {
	if err := require(actor, switchboard.RoleAdmin, "connect channels"); err != nil {
		return err
	}
	if state == "" || session == "" {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "the provider's answer carries no state: start again")
	}
	return s.store.UseOAuthState(ctx, state, session, actor.ID, provider)
}

// KeepOAuthResult keeps, sealed, what the sign-in returned (the Pages and
// their tokens) until the admin picks one.
func (s *Service) KeepOAuthResult(ctx context.Context, actor switchboard.Actor, state, result string) error {
	if err := require(actor, switchboard.RoleAdmin, "connect channels"); err != nil {
		return err
	}
	if s.sealer == nil {
		return switchboard.Errorf(switchboard.EINVALID, "no secrets key is configured: tokens cannot be kept")
	}
	return s.store.SetOAuthResult(ctx, state, s.sealer.seal("oauth:"+state, result))
}

// OAuthResult returns what KeepOAuthResult kept for the session's sign-in
// with state. Done forgets it.
func (s *Service) OAuthResult(ctx context.Context, actor switchboard.Actor, session, state string) (result string, done func(context.Context) error, err error) {
	if err := require(actor, switchboard.RoleAdmin, "connect channels"); err != nil {
		return "", nil, err
	}
	if s.sealer == nil {
		return "", nil, switchboard.Errorf(switchboard.EINVALID, "no secrets key is configured")
	}
	sealed, err := s.store.OAuthResult(ctx, state, session, actor.ID)
	if err != nil {
		return "", nil, err
	}
	result, err = s.sealer.open("oauth:"+state, sealed)
	if err != nil {
		return "", nil, err
	}
	return result, func(ctx context.Context) error { return s.store.DeleteOAuthState(ctx, state) }, nil
}

func randomState() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
