package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email"
	"github.com/switchboard-inbox/switchboard/channel/email/imap"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
	"github.com/switchboard-inbox/switchboard/channel/messenger"
	metawebhook "github.com/switchboard-inbox/switchboard/channel/meta/webhook"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/channel/voice"
	"github.com/switchboard-inbox/switchboard/channel/whatsapp"
	"github.com/switchboard-inbox/switchboard/connect"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/server"
)

// The provider channels (Twilio, Meta, e-mail) are built from the
// configuration with the settings an admin stored in the database laid
// under it: a setting given by a flag or the environment wins. When the
// stored settings change (on this instance, or on another one: each
// polls), the channels are built again and swapped in whole; webhooks,
// senders and background work (IMAP, template sync) follow at once.

// channelRoutes are the channels' webhook routes, by the group of
// settings that turns them on. They are always mounted and answer 404
// while their channel is off.
var channelRoutes = map[string]string{
	"POST /webhooks/twilio/sms":           inbox.GroupTwilio,
	"POST /webhooks/twilio/status":        inbox.GroupTwilio,
	"POST /webhooks/twilio/voice":         inbox.GroupTwilio,
	"POST /webhooks/twilio/recording":     inbox.GroupTwilio,
	"POST /webhooks/twilio/transcription": inbox.GroupTwilio,
	"GET /webhooks/meta":                  inbox.GroupMeta,
	"POST /webhooks/meta":                 inbox.GroupMeta,
	"POST /webhooks/email":                inbox.GroupEmail,
}

// settingChannels are the channels whose replies follow the settings.
var settingChannels = []switchboard.Channel{
	switchboard.ChannelSMS, switchboard.ChannelWhatsApp, switchboard.ChannelMessenger,
	switchboard.ChannelInstagram, switchboard.ChannelEmail, switchboard.ChannelWebform,
}

// defaultSettingsPoll is how often an instance looks for settings another
// instance stored.
const defaultSettingsPoll = 5 * time.Second

// settingField returns the field of c that the setting name sets.
func settingField(c *Config, name string) *string {
	switch name {
	case "TWILIO_ACCOUNT_SID":
		return &c.TwilioAccountSID
	case "TWILIO_AUTH_TOKEN":
		return &c.TwilioAuthToken
	case "TWILIO_FROM":
		return &c.TwilioFrom
	case "TWILIO_MESSAGING_SERVICE_SID":
		return &c.TwilioMessagingSID
	case "VOICE_GREETING":
		return &c.VoiceGreeting
	case "META_APP_ID":
		return &c.MetaAppID
	case "META_APP_SECRET":
		return &c.MetaAppSecret
	case "META_VERIFY_TOKEN":
		return &c.MetaVerifyToken
	case "META_ACCESS_TOKEN":
		return &c.MetaAccessToken
	case "WHATSAPP_PHONE_NUMBER_ID":
		return &c.WhatsAppPhoneNumberID
	case "WHATSAPP_BUSINESS_ACCOUNT_ID":
		return &c.WhatsAppBusinessAccountID
	case "MESSENGER_PAGE_ID":
		return &c.MessengerPageID
	case "MESSENGER_PAGE_TOKEN":
		return &c.MessengerPageToken
	case "INSTAGRAM_ACCOUNT_ID":
		return &c.InstagramAccountID
	case "SMTP_URL":
		return &c.SMTPURL
	case "EMAIL_FROM":
		return &c.EmailFrom
	case "IMAP_URLS":
		return &c.IMAPURLs
	case "INBOUND_EMAIL_SECRET":
		return &c.InboundEmailSecret
	case "DKIM_SELECTOR":
		return &c.DKIMSelector
	case "DKIM_KEY":
		return &c.DKIMKey
	}
	panic("settingField: no field for " + name)
}

// envSettings names the settings the configuration itself gives: they
// win over stored ones and the admin pages show them fixed.
func envSettings(c Config) map[string]bool {
	out := map[string]bool{}
	for _, s := range inbox.ChannelSettings {
		if *settingField(&c, s.Name) != "" {
			out[s.Name] = true
		}
	}
	if c.DKIMKeyFile != "" {
		out["DKIM_KEY"] = true
	}
	return out
}

// withStored is c with the stored settings filling what c leaves empty.
func (c Config) withStored(stored map[string]string) Config {
	env := envSettings(c)
	for _, s := range inbox.ChannelSettings {
		if v := stored[s.Name]; v != "" && !env[s.Name] {
			*settingField(&c, s.Name) = v
		}
	}
	return c
}

// channelSet is one build of the provider channels.
type channelSet struct {
	stored     map[string]string // the stored settings it was built from
	config     Config            // the configuration with them laid under it
	webhooks   map[string]http.Handler
	parts      map[switchboard.Channel]inbox.ChannelParts
	background []func(context.Context)
	// problems says, per group of settings, why that provider is off or
	// only partly on.
	problems map[string][]string
}

func (s *channelSet) problem(group, format string, args ...any) {
	s.problems[group] = append(s.problems[group], fmt.Sprintf(format, args...))
}

// channelProblems checks the combinations of channel settings, by group.
func channelProblems(c Config) map[string][]string {
	p := map[string][]string{}
	bad := func(group, format string, args ...any) { p[group] = append(p[group], fmt.Sprintf(format, args...)) }
	if (c.TwilioAccountSID == "") != (c.TwilioAuthToken == "") {
		bad(inbox.GroupTwilio, "set both SWITCHBOARD_TWILIO_ACCOUNT_SID and SWITCHBOARD_TWILIO_AUTH_TOKEN, or neither")
	}
	if c.TwilioAccountSID != "" && c.TwilioFrom == "" && c.TwilioMessagingSID == "" {
		bad(inbox.GroupTwilio, "SMS needs SWITCHBOARD_TWILIO_FROM (our number) or SWITCHBOARD_TWILIO_MESSAGING_SERVICE_SID")
	}
	if c.MetaAppSecret != "" && c.MetaVerifyToken == "" {
		bad(inbox.GroupMeta, "/webhooks/meta needs SWITCHBOARD_META_VERIFY_TOKEN for Meta's verification handshake")
	}
	if c.EmailFrom != "" {
		if _, err := mail.ParseAddress(c.EmailFrom); err != nil {
			bad(inbox.GroupEmail, "%s %q: %v", setting("EMAIL_FROM"), c.EmailFrom, err)
		}
	}
	if c.SMTPURL != "" && c.EmailFrom == "" {
		bad(inbox.GroupEmail, "outbound e-mail (SWITCHBOARD_SMTP_URL) needs SWITCHBOARD_EMAIL_FROM")
	}
	if (c.DKIMSelector == "") != (c.DKIMKeyFile == "" && c.DKIMKey == "") {
		bad(inbox.GroupEmail, "set both SWITCHBOARD_DKIM_SELECTOR and SWITCHBOARD_DKIM_KEY_FILE (or a DKIM key), or neither")
	}
	if c.DKIMKeyFile != "" && c.DKIMKey != "" {
		bad(inbox.GroupEmail, "set SWITCHBOARD_DKIM_KEY_FILE or SWITCHBOARD_DKIM_KEY, not both")
	}
	return p
}

// buildChannels builds the provider channels of c. A group with a problem
// is left off (or partly on) and says why; the others are built.
func (m *Main) buildChannels(c Config, stored map[string]string) *channelSet {
	set := &channelSet{
		stored: stored, config: c, webhooks: map[string]http.Handler{},
		parts: map[switchboard.Channel]inbox.ChannelParts{}, problems: channelProblems(c),
	}
	if c.TwilioAccountSID != "" && len(set.problems[inbox.GroupTwilio]) == 0 {
		m.buildTwilio(set)
	}
	if len(set.problems[inbox.GroupMeta]) == 0 {
		m.buildMeta(set)
	}
	if len(set.problems[inbox.GroupEmail]) == 0 {
		if err := m.buildEmail(set); err != nil {
			set.problem(inbox.GroupEmail, "%v", err)
			for _, ch := range []switchboard.Channel{switchboard.ChannelEmail, switchboard.ChannelWebform} {
				delete(set.parts, ch)
			}
			delete(set.webhooks, "POST /webhooks/email")
			set.background = nil
		}
	}
	return set
}

// buildTwilio builds SMS (webhooks, sender and policy) and voicemail.
func (m *Main) buildTwilio(set *channelSet) {
	c := set.config
	client := func() *twilio.Client {
		return &twilio.Client{BaseURL: c.TwilioAPIURL, AccountSID: c.TwilioAccountSID, AuthToken: c.TwilioAuthToken, HTTP: m.ProviderHTTP}
	}
	ch := sms.New(sms.Config{
		AuthToken: c.TwilioAuthToken, PublicURL: c.PublicURL, Client: client(),
		From: c.TwilioFrom, MessagingServiceSID: c.TwilioMessagingSID,
		Queue: m.Queue, Blobs: m.Blobs, OptOuts: m.Inbox, Statuses: m.Inbox, Logger: m.Logger, Clock: m.Clock,
		DefaultRegion: c.PhoneRegion, PricePerSegment: c.SMSPricePerSegment,
		OnAccepted: func() { m.Metrics.Accepted.Add(string(switchboard.ChannelSMS), 1) },
		OnRejected: func(code refusal.Code) { m.Metrics.Rejected.Add(string(switchboard.ChannelSMS), string(code), 1) },
	})
	vm := voice.New(voice.Config{
		AuthToken: c.TwilioAuthToken, PublicURL: c.PublicURL, Greeting: c.VoiceGreeting, Client: client(),
		Queue: m.Queue, Blobs: m.Blobs, Store: m.Inbox, Logger: m.Logger, Clock: m.Clock, DefaultRegion: c.PhoneRegion,
		OnAccepted: func() { m.Metrics.Accepted.Add(string(switchboard.ChannelVoice), 1) },
		OnRejected: func(code refusal.Code) { m.Metrics.Rejected.Add(string(switchboard.ChannelVoice), string(code), 1) },
	})
	set.webhooks["POST /webhooks/twilio/voice"] = vm.CallHandler()
	set.webhooks["POST /webhooks/twilio/recording"] = vm.RecordingHandler()
	set.webhooks["POST /webhooks/twilio/transcription"] = vm.TranscriptionHandler()
	set.webhooks["POST /webhooks/twilio/sms"] = ch.InboundHandler()
	set.webhooks["POST /webhooks/twilio/status"] = ch.StatusHandler()
	set.parts[switchboard.ChannelSMS] = inbox.ChannelParts{Policy: ch, Sender: ch}
}

// buildMeta builds /webhooks/meta (with the app secret) and replies on
// WhatsApp, Messenger and Instagram for the ids configured.
func (m *Main) buildMeta(set *channelSet) {
	c := set.config
	if c.MetaAppSecret != "" {
		var media *whatsapp.MediaClient
		if c.MetaAccessToken != "" {
			media = &whatsapp.MediaClient{BaseURL: c.GraphAPIURL, Token: c.MetaAccessToken, HTTP: m.ProviderHTTP}
		}
		h := metawebhook.New(metawebhook.Config{
			AppSecret: c.MetaAppSecret, VerifyToken: c.MetaVerifyToken, Queue: m.Queue, Blobs: m.Blobs, Store: m.Inbox,
			Media: media, HTTP: m.ProviderHTTP, GraphAPIURL: c.GraphAPIURL, Logger: m.Logger, Clock: m.Clock,
			Accounts:   map[switchboard.Channel]string{switchboard.ChannelMessenger: c.MessengerPageID, switchboard.ChannelInstagram: c.InstagramAccountID},
			OnAccepted: func(ch switchboard.Channel) { m.Metrics.Accepted.Add(string(ch), 1) },
			OnRejected: func(code refusal.Code) { m.Metrics.Rejected.Add("meta", string(code), 1) },
		})
		set.webhooks["GET /webhooks/meta"] = h
		set.webhooks["POST /webhooks/meta"] = h
	}
	lastInbound := func(ch switchboard.Channel) func(context.Context, string) (time.Time, error) {
		return func(ctx context.Context, conversationID string) (time.Time, error) {
			return m.Inbox.LastInbound(ctx, conversationID, ch)
		}
	}
	if c.WhatsAppPhoneNumberID != "" && c.MetaAccessToken != "" {
		wa := &whatsapp.Channel{
			Client:      &whatsapp.Client{BaseURL: c.GraphAPIURL, PhoneNumberID: c.WhatsAppPhoneNumberID, Token: c.MetaAccessToken, HTTP: m.ProviderHTTP},
			LastInbound: lastInbound(switchboard.ChannelWhatsApp), Clock: m.Clock,
			Blobs: m.Blobs,
		}
		set.parts[switchboard.ChannelWhatsApp] = inbox.ChannelParts{Policy: wa, Sender: wa}
		if c.WhatsAppBusinessAccountID != "" {
			set.background = append(set.background, func(ctx context.Context) {
				whatsapp.SyncTemplates(ctx, wa.Client, c.WhatsAppBusinessAccountID, m.Inbox, time.Hour, m.Logger)
			})
		}
	}
	// Messenger and Instagram replies go through the Page, with its own
	// token when Facebook Login stored one.
	token := c.MessengerPageToken
	if token == "" {
		token = c.MetaAccessToken
	}
	if c.MessengerPageID != "" && token != "" {
		for _, ch := range []switchboard.Channel{switchboard.ChannelMessenger, switchboard.ChannelInstagram} {
			mc := &messenger.Channel{
				Client:      &messenger.Client{BaseURL: c.GraphAPIURL, PageID: c.MessengerPageID, Token: token, HTTP: m.ProviderHTTP, Channel: ch},
				LastInbound: lastInbound(ch), Clock: m.Clock,
				Blobs: m.Blobs,
			}
			set.parts[ch] = inbox.ChannelParts{Policy: mc, Sender: mc}
		}
	}
}

// buildEmail builds e-mail for what is configured: replies over SMTP
// (also for web-form customers), POST /webhooks/email, and IMAP
// mailboxes.
func (m *Main) buildEmail(set *channelSet) error {
	c := set.config
	var tokens *email.Tokens
	var from smtpout.Address
	if c.EmailFrom != "" {
		a, err := mail.ParseAddress(c.EmailFrom)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_EMAIL_FROM: %w", err)
		}
		from = smtpout.Address{Name: a.Name, Addr: strings.ToLower(a.Address)}
		tokens = email.NewTokens(m.signingKey, from.Addr)
	}
	ch := email.New(email.Config{Queue: m.Queue, Blobs: m.Blobs, Store: m.Inbox, Tokens: tokens, DeadLetters: m.Inbox, Logger: m.Logger})
	if c.InboundEmailSecret != "" {
		set.webhooks["POST /webhooks/email"] = ch.Handler(email.HandlerConfig{
			Secret: c.InboundEmailSecret, Logger: m.Logger, Clock: m.Clock,
			OnAccepted: func() { m.Metrics.Accepted.Add(string(switchboard.ChannelEmail), 1) },
			OnRejected: func(code refusal.Code) { m.Metrics.Rejected.Add(string(switchboard.ChannelEmail), string(code), 1) },
		})
	}
	if c.IMAPURLs != "" {
		var boxes []imap.Mailbox
		for _, u := range strings.Split(c.IMAPURLs, ",") {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			b, err := imap.ParseURL(u)
			if err != nil {
				return fmt.Errorf("SWITCHBOARD_IMAP_URLS: %w", err)
			}
			boxes = append(boxes, b)
		}
		d := &email.IMAPDelivery{
			Channel: ch, DeadLetters: m.Inbox, Clock: m.Clock,
			OnAccepted: func() { m.Metrics.Accepted.Add(string(switchboard.ChannelEmail), 1) },
		}
		f := &imap.Fetcher{Mailboxes: boxes, State: email.MailboxStates{Inbox: m.Inbox}, Logger: m.Logger, Poll: c.IMAPPoll, Deliver: d.Deliver}
		set.background = append(set.background, func(ctx context.Context) {
			if err := f.Run(ctx); err != nil && ctx.Err() == nil {
				m.Logger.Error("imap: stopped", "err", err)
			}
		})
	}
	if c.SMTPURL != "" {
		cfg := smtpout.Config{URL: c.SMTPURL, Timeout: time.Minute}
		if c.DKIMSelector != "" {
			d, err := loadDKIM(c, from.Addr[strings.LastIndexByte(from.Addr, '@')+1:])
			if err != nil {
				return err
			}
			cfg.DKIM = d
		}
		client, err := smtpout.New(cfg)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_SMTP_URL: %w", err)
		}
		s := email.NewSender(email.SenderConfig{Mailer: client, From: from, Tokens: tokens, Threads: m.Inbox, Blobs: m.Blobs})
		for _, ch := range []switchboard.Channel{switchboard.ChannelEmail, switchboard.ChannelWebform} {
			set.parts[ch] = inbox.ChannelParts{Policy: s, Sender: s}
		}
	}
	return nil
}

// loadDKIM reads the DKIM key from its file or from the stored setting.
func loadDKIM(c Config, domain string) (*smtpout.DKIM, error) {
	if c.DKIMKeyFile != "" {
		d, err := smtpout.LoadDKIM(domain, c.DKIMSelector, c.DKIMKeyFile)
		if err != nil {
			return nil, fmt.Errorf("DKIM: %w", err)
		}
		return d, nil
	}
	key, err := smtpout.ParseDKIMKey([]byte(c.DKIMKey))
	if err != nil {
		return nil, fmt.Errorf("DKIM key: %w", err)
	}
	return &smtpout.DKIM{Domain: domain, Selector: c.DKIMSelector, Key: key}, nil
}

// channels holds the channel set in use and what runs for it.
type channels struct {
	mu       sync.Mutex // serialises reloads
	current  *channelSet
	runCtx   context.Context
	stop     context.CancelFunc // stops the current set's background work
	stopped  sync.WaitGroup
	routesMu sync.RWMutex
}

// channelRoute serves pattern with the current set's handler.
func (m *Main) channelRoute(pattern string) http.Handler {
	group := channelRoutes[pattern]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.chans.routesMu.RLock()
		var h http.Handler
		if m.chans.current != nil {
			h = m.chans.current.webhooks[pattern]
		}
		m.chans.routesMu.RUnlock()
		if h == nil {
			server.ErrorHandler(switchboard.Errorf(switchboard.ENOTFOUND, "the %s channel is not configured here", groupNames[group])).ServeHTTP(w, r)
			return
		}
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if rec.status < 300 && r.Method == http.MethodPost && m.Connect != nil {
			m.Connect.Seen(group)
		}
	})
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

var groupNames = map[string]string{inbox.GroupTwilio: "Twilio (SMS and voice)", inbox.GroupMeta: "Meta (WhatsApp, Messenger, Instagram)", inbox.GroupEmail: "e-mail"}

// applyChannels puts set in use: webhooks, senders and background work.
// Call with m.chans.mu held.
func (m *Main) applyChannels(set *channelSet) {
	ch := &m.chans
	parts := set.parts
	if m.Connect != nil {
		// Failed sends show in the channel's health.
		parts = make(map[switchboard.Channel]inbox.ChannelParts, len(set.parts))
		for c, p := range set.parts {
			parts[c] = inbox.ChannelParts{Policy: p.Policy, Sender: m.Connect.Sender(c, p.Sender)}
		}
	}
	m.Inbox.SwapChannels(settingChannels, parts)
	ch.routesMu.Lock()
	ch.current = set
	ch.routesMu.Unlock()
	if ch.stop != nil {
		ch.stop()
		ch.stopped.Wait()
		ch.stop = nil
	}
	if ch.runCtx != nil {
		m.startChannelWork(set)
	}
	for group, ps := range set.problems {
		m.Logger.Warn("channel settings: "+group+" is off or partly on", "problems", strings.Join(ps, "; "))
	}
}

// startChannelWork starts set's background work under the run context.
func (m *Main) startChannelWork(set *channelSet) {
	ch := &m.chans
	ctx, cancel := context.WithCancel(ch.runCtx)
	ch.stop = cancel
	for _, fn := range set.background {
		ch.stopped.Add(1)
		m.goRun(func() {
			defer ch.stopped.Done()
			fn(ctx)
		})
	}
}

// reloadChannels builds the channels again when the stored settings
// changed since the set in use was built.
func (m *Main) reloadChannels(ctx context.Context) {
	stored, err := m.Inbox.StoredSettings(ctx)
	if err != nil {
		if stored == nil {
			m.Logger.Error("channel settings: read", "err", err)
			return
		}
		m.Logger.Error("channel settings: some stored secrets do not open", "err", err)
	}
	ch := &m.chans
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.current != nil && maps.Equal(ch.current.stored, stored) {
		return
	}
	m.applyChannels(m.buildChannels(m.Config.withStored(stored), stored))
	m.Logger.Info("channel settings applied", "stored", len(stored))
}

// checkSettings says what would be wrong with the channels built from
// stored: the inbox refuses such a change before storing it.
func (m *Main) checkSettings(stored map[string]string) error {
	set := m.buildChannels(m.Config.withStored(stored), stored)
	groups := make([]string, 0, len(set.problems))
	for g := range set.problems {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var errs []error
	for _, g := range groups {
		for _, p := range set.problems[g] {
			errs = append(errs, errors.New(p))
		}
	}
	return errors.Join(errs...)
}

// watchSettings applies settings other instances store.
func (m *Main) watchSettings(ctx context.Context) {
	poll := m.SettingsPoll
	if poll <= 0 {
		poll = defaultSettingsPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.reloadChannels(ctx)
		}
	}
}

// connectSettings are the channel settings in use, for the connections.
func (m *Main) connectSettings() connect.Settings {
	m.chans.routesMu.RLock()
	c, problems := m.Config, map[string][]string(nil)
	if m.chans.current != nil {
		c, problems = m.chans.current.config, m.chans.current.problems
	}
	m.chans.routesMu.RUnlock()
	return connect.Settings{
		TwilioAccountSID: c.TwilioAccountSID, TwilioAuthToken: c.TwilioAuthToken, TwilioAPIURL: c.TwilioAPIURL,
		TwilioFrom: c.TwilioFrom, TwilioMessagingSID: c.TwilioMessagingSID,
		MetaAppID: c.MetaAppID, MetaAppSecret: c.MetaAppSecret, GraphAPIURL: c.GraphAPIURL,
		MetaAccessToken: c.MetaAccessToken, WhatsAppPhoneNumberID: c.WhatsAppPhoneNumberID,
		MessengerPageID: c.MessengerPageID, MessengerPageToken: c.MessengerPageToken,
		InstagramAccountID: c.InstagramAccountID, WhatsAppBusinessAccountID: c.WhatsAppBusinessAccountID,
		EmailFrom: c.EmailFrom, SMTPURL: c.SMTPURL, IMAPURLs: c.IMAPURLs, InboundEmailSecret: c.InboundEmailSecret,
		DKIMSelector: c.DKIMSelector, DKIMKey: c.DKIMKey,
		Problems: problems,
	}
}
