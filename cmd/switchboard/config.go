package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// Config is everything serve needs. Each field has a flag and a
// SWITCHBOARD_* environment variable (docs/design.md §4.2); flags win.
type Config struct {
	Addr         string
	PublicURL    string
	DataDir      string
	DatabaseURL  string
	RedisURL     string
	BlobURL      string
	BlobKey      string // signs file URLs, keys reply tokens; empty: one generated into the data directory
	ReopenWindow time.Duration
	LogLevel     string
	// MetricsToken lets its bearer read /metrics on the main address;
	// MetricsAddr serves /metrics, unauthenticated, on an address of its
	// own. With neither, /metrics is not served.
	MetricsToken string
	MetricsAddr  string
	LogFormat    string

	FormThanksURL     string
	FormOrigins       string
	FormRatePerMinute int
	IngestWorkers     int
	IngestBatch       int
	// SQLiteCacheMB is the embedded database's page cache, all its
	// connections together.
	SQLiteCacheMB     int
	OutboxMaxAttempts int
	ShutdownTimeout   time.Duration
	// RedisPrefix namespaces every Redis key and channel, so that several
	// deployments (or test runs) can share one Redis.
	RedisPrefix string
	// RedisAllowVolatile lets serve put the inbound queue on a Redis that
	// may lose acknowledged messages (no appendonly yes with appendfsync
	// always, or settings it cannot read): the operator accepts the risk.
	RedisAllowVolatile bool
	// TrustProxy reads clients' addresses (the sign-in throttle, the web
	// form's rate limit) from the last X-Forwarded-For entry.
	TrustProxy bool
	// QueueReclaimAfter is how long an inbound entry may stay unacknowledged
	// with a consumer before another takes it, assuming the first died.
	QueueReclaimAfter time.Duration
	// EventLog is how long real-time events are kept for agents who
	// reconnect to replay (at least an hour is what clients can count on).
	EventLog time.Duration

	// Twilio (SMS). The channel is on when the account SID and auth token
	// are set.
	TwilioAccountSID   string
	TwilioAuthToken    string
	TwilioAPIURL       string
	TwilioFrom         string
	TwilioMessagingSID string
	SMSPricePerSegment float64
	PhoneRegion        string
	VoiceGreeting      string

	// Meta (WhatsApp, Messenger, Instagram). Webhooks are on when the app
	// secret is set.
	MetaAppID       string // Facebook Login and token checks
	MetaAppSecret   string
	MetaVerifyToken string
	MetaAccessToken string
	GraphAPIURL     string
	// With the access token, these turn on sending on each channel.
	WhatsAppPhoneNumberID string
	// WhatsAppBusinessAccountID turns on syncing message templates.
	WhatsAppBusinessAccountID string
	// MessengerPageID turns on Messenger and Instagram replies: both are
	// sent through the Page. With it, Messenger events addressed to any
	// other Page are ignored.
	MessengerPageID string
	// MessengerPageToken, when set, sends Messenger and Instagram replies
	// instead of MetaAccessToken (Facebook Login stores the Page's).
	MessengerPageToken string
	// InstagramAccountID, when set, is the only Instagram professional
	// account whose events are kept (an app subscribed to several).
	InstagramAccountID string

	// E-mail. Replies go out over SMTP when SMTPURL and EmailFrom are set;
	// mail comes in from IMAPURLs and from /webhooks/email when
	// InboundEmailSecret is set.
	SMTPURL            string
	IMAPURLs           string
	IMAPPoll           time.Duration
	EmailFrom          string
	DKIMSelector       string
	DKIMKeyFile        string
	DKIMKey            string // the PEM itself, in place of DKIMKeyFile
	InboundEmailSecret string

	// Routing. RoutingOff leaves assignment to people (and to another
	// deployment's router).
	RoutingOff        bool
	OfflineGrace      time.Duration
	ClassifierRetrain time.Duration

	// CSATDelay is how long after a resolution the satisfaction survey
	// goes out: a duration, "0" at once, "off" never (CSATOff).
	CSATDelay string
	csatDelay time.Duration
	CSATOff   bool
	// DNSResolver, host:port, answers the sending domain's checks.
	DNSResolver string
	// ResponseTargets are first-response targets by channel,
	// "livechat=1m,email=4h" (the others keep their defaults).
	ResponseTargets string
	responseTargets map[switchboard.Channel]time.Duration

	// LivechatEmailAfter is how long a live-chat visitor must have been
	// gone before replies go by e-mail.
	LivechatEmailAfter time.Duration

	// envErrs are the variables Bind could not parse, and flags the flag
	// set it registered on: Validate reports the problems of the settings
	// whose flag was not given (a flag wins over its variable).
	envErrs []envError
	flags   *flag.FlagSet
}

// Defaults that 0 also stands for (the flag help says which).
const (
	defaultReopenWindow      = 7 * 24 * time.Hour
	defaultQueueReclaimAfter = 30 * time.Second
	defaultEventLog          = time.Hour
	defaultSMSPrice          = 0.0079
	defaultIMAPPoll          = time.Minute
	defaultOfflineGrace      = 5 * time.Minute
	defaultLivechatEmail     = 10 * time.Minute
	defaultShutdownTimeout   = 10 * time.Second
)

// envPrefix starts every variable name; the setting NAME is read from
// SWITCHBOARD_NAME and has the flag --name (lower case, "-" for "_").
const envPrefix = "SWITCHBOARD_"

// envError is a SWITCHBOARD_* variable Bind could not parse.
type envError struct {
	name string // without the prefix
	err  error
}

// setting names a setting by its variable and its flag, for messages.
func setting(name string) string {
	return envPrefix + name + " (--" + flagName(name) + ")"
}

func flagName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// env returns the SWITCHBOARD_ variable for name, or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(envPrefix + name); ok {
		return v
	}
	return def
}

// envParse returns the SWITCHBOARD_ variable for name parsed by parse, or
// def when it is unset. A value that does not parse (an empty one
// included) is recorded for Validate, and def is used meanwhile: the flag
// may still override it.
func envParse[T any](c *Config, name string, def T, parse func(string) (T, error), want string) T {
	v, ok := os.LookupEnv(envPrefix + name)
	if !ok {
		return def
	}
	x, err := parse(v)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			want = "out of range"
		}
		c.envErrs = append(c.envErrs, envError{name, fmt.Errorf("config: %s%s=%q: %s", envPrefix, name, v, want)})
		return def
	}
	return x
}

func (c *Config) envInt(name string, def int) int {
	return envParse(c, name, def, strconv.Atoi, "not an integer")
}

func (c *Config) envBool(name string, def bool) bool {
	return envParse(c, name, def, strconv.ParseBool, "not a boolean (true or false)")
}

func (c *Config) envFloat(name string, def float64) float64 {
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	return envParse(c, name, def, parse, "not a number")
}

func (c *Config) envDuration(name string, def time.Duration) time.Duration {
	return envParse(c, name, def, time.ParseDuration, "not a duration (such as 90s, 5m or 1h30m)")
}

// Bind registers the configuration's flags on fs, with defaults from the
// environment. A variable that does not parse is reported by Validate,
// unless its flag is given.
func (c *Config) Bind(fs *flag.FlagSet) {
	c.flags, c.envErrs = fs, nil
	fs.StringVar(&c.Addr, "addr", env("ADDR", "127.0.0.1:8080"), "listen address (SWITCHBOARD_ADDR)")
	fs.StringVar(&c.PublicURL, "public-url", env("PUBLIC_URL", ""), "base URL providers and browsers use to reach this server (SWITCHBOARD_PUBLIC_URL); default http://ADDR")
	fs.StringVar(&c.DataDir, "data-dir", env("DATA_DIR", "switchboard-data"), "directory for the embedded database, queue and files (SWITCHBOARD_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", ""), "sqlite:PATH or postgres://... (SWITCHBOARD_DATABASE_URL); default sqlite in the data directory")
	fs.StringVar(&c.RedisURL, "redis-url", env("REDIS_URL", ""), "redis://... for the inbound queue and event bus of several instances (SWITCHBOARD_REDIS_URL)")
	fs.StringVar(&c.BlobURL, "blob-url", env("BLOB_URL", ""), "file:DIR or s3://bucket?endpoint=... (SWITCHBOARD_BLOB_URL); default files in the data directory")
	fs.StringVar(&c.BlobKey, "blob-key", env("BLOB_KEY", ""), "key that signs local file URLs and e-mail reply tokens, 32 characters or more; set the same one on every instance; default one generated into the data directory (SWITCHBOARD_BLOB_KEY)")
	fs.DurationVar(&c.ReopenWindow, "reopen-window", c.envDuration("REOPEN_WINDOW", defaultReopenWindow), "a message this soon after resolution reopens the conversation; 0 means 168h (SWITCHBOARD_REOPEN_WINDOW)")
	fs.StringVar(&c.MetricsToken, "metrics-token", env("METRICS_TOKEN", ""), "bearer token that reads /metrics on the main address; unset: not served there (SWITCHBOARD_METRICS_TOKEN)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", env("METRICS_ADDR", ""), "separate listen address serving /metrics without a token, for a private network (SWITCHBOARD_METRICS_ADDR)")
	fs.StringVar(&c.LogLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (SWITCHBOARD_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("LOG_FORMAT", "text"), "text or json (SWITCHBOARD_LOG_FORMAT)")
	fs.StringVar(&c.FormThanksURL, "form-thanks-url", env("FORM_THANKS_URL", ""), "where browser form posts are redirected after success (SWITCHBOARD_FORM_THANKS_URL)")
	fs.StringVar(&c.FormOrigins, "form-origins", env("FORM_ORIGINS", ""), "comma-separated origins allowed to post forms; empty allows any (SWITCHBOARD_FORM_ORIGINS)")
	fs.IntVar(&c.FormRatePerMinute, "form-rate-limit", c.envInt("FORM_RATE_LIMIT", 10), "form posts per minute per client address; 0 disables (SWITCHBOARD_FORM_RATE_LIMIT)")
	fs.IntVar(&c.IngestWorkers, "ingest-workers", c.envInt("INGEST_WORKERS", 0), "ingest batches processed at once; 0 means 1 on SQLite, 4 on PostgreSQL (SWITCHBOARD_INGEST_WORKERS)")
	fs.IntVar(&c.SQLiteCacheMB, "sqlite-cache-mb", c.envInt("SQLITE_CACHE_MB", 64), "the embedded SQLite database's page cache in MB, for all its connections together, at least 4; 0 means 64 (SWITCHBOARD_SQLITE_CACHE_MB)")
	fs.IntVar(&c.IngestBatch, "ingest-batch", c.envInt("INGEST_BATCH", 256), "most messages stored per transaction, at least 1 (SWITCHBOARD_INGEST_BATCH)")
	fs.IntVar(&c.OutboxMaxAttempts, "outbox-max-attempts", c.envInt("OUTBOX_MAX_ATTEMPTS", 8), "send attempts before a reply fails for good, at least 1 (SWITCHBOARD_OUTBOX_MAX_ATTEMPTS)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", env("REDIS_PREFIX", "switchboard:"), "prefix of every Redis key and Pub/Sub channel (SWITCHBOARD_REDIS_PREFIX)")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", c.envBool("TRUST_PROXY", false), "take clients' addresses from the last X-Forwarded-For entry: set it only behind exactly one reverse proxy that appends to it (SWITCHBOARD_TRUST_PROXY)")
	fs.BoolVar(&c.RedisAllowVolatile, "redis-allow-volatile", c.envBool("REDIS_ALLOW_VOLATILE", false), "use Redis for the inbound queue even when it does not run with appendonly yes and appendfsync always, or hides its settings (CONFIG disabled), accepting that a Redis crash or restart may lose messages providers were told were received (SWITCHBOARD_REDIS_ALLOW_VOLATILE)")
	fs.DurationVar(&c.EventLog, "event-log", c.envDuration("EVENT_LOG", defaultEventLog), "how long real-time events are kept for sockets that reconnect with ?since=; 0 means 1h (SWITCHBOARD_EVENT_LOG)")
	fs.DurationVar(&c.QueueReclaimAfter, "queue-reclaim-after", c.envDuration("QUEUE_RECLAIM_AFTER", defaultQueueReclaimAfter), "redeliver inbound entries a consumer has held this long without acknowledging; 0 means 30s (SWITCHBOARD_QUEUE_RECLAIM_AFTER)")
	fs.StringVar(&c.TwilioAccountSID, "twilio-account-sid", env("TWILIO_ACCOUNT_SID", ""), "Twilio account SID; with the auth token, turns SMS on (SWITCHBOARD_TWILIO_ACCOUNT_SID)")
	fs.StringVar(&c.TwilioAuthToken, "twilio-auth-token", env("TWILIO_AUTH_TOKEN", ""), "Twilio auth token (SWITCHBOARD_TWILIO_AUTH_TOKEN)")
	fs.StringVar(&c.TwilioAPIURL, "twilio-api-url", env("TWILIO_API_URL", "https://api.twilio.com"), "Twilio REST base URL (SWITCHBOARD_TWILIO_API_URL)")
	fs.StringVar(&c.TwilioFrom, "twilio-from", env("TWILIO_FROM", ""), "our SMS number, E.164 (SWITCHBOARD_TWILIO_FROM)")
	fs.StringVar(&c.TwilioMessagingSID, "twilio-messaging-service-sid", env("TWILIO_MESSAGING_SERVICE_SID", ""), "send through this Messaging Service instead of a number (SWITCHBOARD_TWILIO_MESSAGING_SERVICE_SID)")
	fs.Float64Var(&c.SMSPricePerSegment, "sms-price", c.envFloat("SMS_PRICE", defaultSMSPrice), "price per SMS segment shown by the composer; 0 means 0.0079 (SWITCHBOARD_SMS_PRICE)")
	fs.StringVar(&c.PhoneRegion, "phone-region", env("PHONE_REGION", "US"), "region for phone numbers written without a country code (SWITCHBOARD_PHONE_REGION)")
	fs.StringVar(&c.VoiceGreeting, "voice-greeting", env("VOICE_GREETING", ""), "what callers hear before leaving a voicemail (SWITCHBOARD_VOICE_GREETING)")
	fs.StringVar(&c.MetaAppID, "meta-app-id", env("META_APP_ID", ""), "Meta app id, for connecting Facebook and Instagram with Facebook Login and checking tokens (SWITCHBOARD_META_APP_ID)")
	fs.StringVar(&c.MetaAppSecret, "meta-app-secret", env("META_APP_SECRET", ""), "Meta app secret; turns on /webhooks/meta for WhatsApp, Messenger and Instagram (SWITCHBOARD_META_APP_SECRET)")
	fs.StringVar(&c.MetaVerifyToken, "meta-verify-token", env("META_VERIFY_TOKEN", ""), "token Meta's webhook verification must present (SWITCHBOARD_META_VERIFY_TOKEN)")
	fs.StringVar(&c.MetaAccessToken, "meta-access-token", env("META_ACCESS_TOKEN", ""), "Graph API access token, for media (SWITCHBOARD_META_ACCESS_TOKEN)")
	fs.StringVar(&c.GraphAPIURL, "graph-api-url", env("GRAPH_API_URL", "https://graph.facebook.com/v25.0"), "Graph API base URL (SWITCHBOARD_GRAPH_API_URL)")
	fs.StringVar(&c.WhatsAppPhoneNumberID, "whatsapp-phone-number-id", env("WHATSAPP_PHONE_NUMBER_ID", ""), "WhatsApp Cloud API phone number id; turns on WhatsApp replies (SWITCHBOARD_WHATSAPP_PHONE_NUMBER_ID)")
	fs.StringVar(&c.WhatsAppBusinessAccountID, "whatsapp-business-account-id", env("WHATSAPP_BUSINESS_ACCOUNT_ID", ""), "WhatsApp Business Account id; message templates are synced from it hourly (SWITCHBOARD_WHATSAPP_BUSINESS_ACCOUNT_ID)")
	fs.StringVar(&c.MessengerPageID, "messenger-page-id", env("MESSENGER_PAGE_ID", ""), "Facebook Page id; turns on Messenger and Instagram replies, sent through the Page; Messenger events for other Pages are ignored (SWITCHBOARD_MESSENGER_PAGE_ID)")
	fs.StringVar(&c.MessengerPageToken, "messenger-page-token", env("MESSENGER_PAGE_TOKEN", ""), "the Page's access token for Messenger and Instagram replies; default SWITCHBOARD_META_ACCESS_TOKEN (SWITCHBOARD_MESSENGER_PAGE_TOKEN)")
	fs.StringVar(&c.InstagramAccountID, "instagram-account-id", env("INSTAGRAM_ACCOUNT_ID", ""), "Instagram professional account id; Instagram events for other accounts are ignored (SWITCHBOARD_INSTAGRAM_ACCOUNT_ID)")
	fs.StringVar(&c.SMTPURL, "smtp-url", env("SMTP_URL", ""), "smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 for outbound e-mail (SWITCHBOARD_SMTP_URL)")
	fs.StringVar(&c.IMAPURLs, "imap-urls", env("IMAP_URLS", ""), "comma-separated imap(s)://user:pass@host/MAILBOX?processed=FOLDER mailboxes to read (SWITCHBOARD_IMAP_URLS)")
	fs.DurationVar(&c.IMAPPoll, "imap-poll", c.envDuration("IMAP_POLL", defaultIMAPPoll), "how often to poll mailboxes whose server has no IDLE; 0 means 1m (SWITCHBOARD_IMAP_POLL)")
	fs.StringVar(&c.EmailFrom, "email-from", env("EMAIL_FROM", ""), "our address, e.g. 'Acme Support <support@acme.example>'; replies carry support+TOKEN@ as Reply-To (SWITCHBOARD_EMAIL_FROM)")
	fs.StringVar(&c.DKIMSelector, "dkim-selector", env("DKIM_SELECTOR", ""), "DKIM selector for outbound mail (SWITCHBOARD_DKIM_SELECTOR)")
	fs.StringVar(&c.DKIMKeyFile, "dkim-key-file", env("DKIM_KEY_FILE", ""), "PEM private key (RSA or Ed25519) that signs outbound mail (SWITCHBOARD_DKIM_KEY_FILE)")
	fs.StringVar(&c.DKIMKey, "dkim-key", env("DKIM_KEY", ""), "the DKIM private key itself (PEM), in place of a key file (SWITCHBOARD_DKIM_KEY)")
	fs.StringVar(&c.InboundEmailSecret, "inbound-email-secret", env("INBOUND_EMAIL_SECRET", ""), "turns on POST /webhooks/email: the Bearer/Basic secret, or Mailgun's signing key (SWITCHBOARD_INBOUND_EMAIL_SECRET)")
	fs.BoolVar(&c.RoutingOff, "routing-off", c.envBool("ROUTING_OFF", false), "do not assign conversations automatically (SWITCHBOARD_ROUTING_OFF)")
	fs.DurationVar(&c.OfflineGrace, "offline-grace", c.envDuration("OFFLINE_GRACE", defaultOfflineGrace), "an agent away or offline this long has their chat-like conversations returned to the queue; 0 means 5m (SWITCHBOARD_OFFLINE_GRACE)")
	fs.DurationVar(&c.ClassifierRetrain, "classifier-retrain", c.envDuration("CLASSIFIER_RETRAIN", 24*time.Hour), "how often the topic classifier is retrained on resolved conversations; 0 never (SWITCHBOARD_CLASSIFIER_RETRAIN)")
	fs.DurationVar(&c.LivechatEmailAfter, "livechat-email-after", c.envDuration("LIVECHAT_EMAIL_AFTER", defaultLivechatEmail), "a live-chat visitor gone this long gets replies by e-mail, when they gave an address and e-mail is set up; 0 means 10m (SWITCHBOARD_LIVECHAT_EMAIL_AFTER)")
	fs.StringVar(&c.CSATDelay, "csat-delay", env("CSAT_DELAY", "1h"), "how long after a resolution the satisfaction survey goes out: a duration, 0 for at once, off for none (SWITCHBOARD_CSAT_DELAY)")
	fs.StringVar(&c.ResponseTargets, "response-targets", env("RESPONSE_TARGETS", ""), "first-response targets by channel for analytics, e.g. livechat=1m,email=4h; unset channels keep the defaults (SWITCHBOARD_RESPONSE_TARGETS)")
	fs.StringVar(&c.DNSResolver, "dns-resolver", env("DNS_RESOLVER", ""), "host:port of the DNS resolver the e-mail domain checks (SPF, DKIM, DMARC) ask; default the system's (SWITCHBOARD_DNS_RESOLVER)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.envDuration("SHUTDOWN_TIMEOUT", defaultShutdownTimeout), "grace period for in-flight requests on shutdown; 0 means 10s (SWITCHBOARD_SHUTDOWN_TIMEOUT)")
}

// Validate fills derived defaults and checks the configuration. It reports
// every problem at once, one line each, naming the setting and saying what
// to fix; the variables Bind could not parse come first.
func (c *Config) Validate() error {
	var errs []error
	given := map[string]bool{}
	if c.flags != nil {
		c.flags.Visit(func(f *flag.Flag) { given[f.Name] = true })
	}
	for _, e := range c.envErrs {
		if !given[flagName(e.name)] {
			errs = append(errs, e.err)
		}
	}
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: "+format, args...))
	}

	if c.DataDir == "" {
		bad("%s must not be empty", setting("DATA_DIR"))
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, "switchboard.db")
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("%s must start with sqlite: or postgres://", setting("DATABASE_URL"))
	}
	if c.BlobURL == "" {
		c.BlobURL = "file:" + filepath.Join(c.DataDir, "files")
	}
	if c.BlobKey != "" && len(c.BlobKey) < 32 {
		bad("%s has %d characters: must have at least 32", setting("BLOB_KEY"), len(c.BlobKey))
	}
	if c.RedisURL != "" {
		if _, err := url.Parse(c.RedisURL); err != nil || !strings.HasPrefix(c.RedisURL, "redis") {
			bad("%s must be a redis:// or rediss:// URL", setting("REDIS_URL"))
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("%s %q must be an absolute http(s) URL", setting("PUBLIC_URL"), c.PublicURL)
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("%s %q: want debug, info, warn or error", setting("LOG_LEVEL"), c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("%s %q: want text or json", setting("LOG_FORMAT"), c.LogFormat)
	}

	// Counts. 0 means "off" or "the default" only where the flag help
	// says so; a negative count is always a mistake.
	if c.FormRatePerMinute < 0 {
		bad("%s is %d: must be 0 (off) or more", setting("FORM_RATE_LIMIT"), c.FormRatePerMinute)
	}
	if c.IngestWorkers < 0 {
		bad("%s is %d: must be 0 (the default) or more", setting("INGEST_WORKERS"), c.IngestWorkers)
	}
	if c.SQLiteCacheMB != 0 && c.SQLiteCacheMB < 4 {
		bad("%s is %d: must be at least 4 (0 means 64)", setting("SQLITE_CACHE_MB"), c.SQLiteCacheMB)
	}
	if c.IngestBatch < 1 {
		bad("%s is %d: must be at least 1", setting("INGEST_BATCH"), c.IngestBatch)
	}
	if c.OutboxMaxAttempts < 1 {
		bad("%s is %d: must be at least 1", setting("OUTBOX_MAX_ATTEMPTS"), c.OutboxMaxAttempts)
	}
	if math.IsNaN(c.SMSPricePerSegment) || math.IsInf(c.SMSPricePerSegment, 0) || c.SMSPricePerSegment < 0 {
		bad("%s is %v: must be 0 (the default) or more", setting("SMS_PRICE"), c.SMSPricePerSegment)
	} else if c.SMSPricePerSegment == 0 {
		c.SMSPricePerSegment = defaultSMSPrice
	}

	// Durations: negative is a mistake; 0 is the default, except for the
	// classifier, where it means never.
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"REOPEN_WINDOW", &c.ReopenWindow, defaultReopenWindow},
		{"QUEUE_RECLAIM_AFTER", &c.QueueReclaimAfter, defaultQueueReclaimAfter},
		{"EVENT_LOG", &c.EventLog, defaultEventLog},
		{"IMAP_POLL", &c.IMAPPoll, defaultIMAPPoll},
		{"OFFLINE_GRACE", &c.OfflineGrace, defaultOfflineGrace},
		{"LIVECHAT_EMAIL_AFTER", &c.LivechatEmailAfter, defaultLivechatEmail},
		{"SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, defaultShutdownTimeout},
		{"CLASSIFIER_RETRAIN", &c.ClassifierRetrain, 0},
	} {
		switch {
		case *d.v < 0:
			bad("%s is %v: must not be negative", setting(d.name), *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}

	switch c.CSATDelay {
	case "off", "":
		// A Config built without flags (tests, embedders) sends none;
		// the flag's default is 1h.
		c.CSATOff = true
	default:
		d, err := time.ParseDuration(c.CSATDelay)
		if c.CSATDelay == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			bad("%s %q: want a duration (such as 30m), 0 or off", setting("CSAT_DELAY"), c.CSATDelay)
		}
		c.csatDelay = d
	}
	c.responseTargets = map[switchboard.Channel]time.Duration{}
	for _, kv := range strings.Split(c.ResponseTargets, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		name, dur, _ := strings.Cut(kv, "=")
		ch := switchboard.Channel(strings.TrimSpace(name))
		d, err := time.ParseDuration(strings.TrimSpace(dur))
		if !ch.Valid() || err != nil || d <= 0 {
			bad("%s %q: want channel=duration pairs, such as livechat=1m,email=4h", setting("RESPONSE_TARGETS"), kv)
			continue
		}
		c.responseTargets[ch] = d
	}
	probs := channelProblems(*c)
	for _, g := range []string{inbox.GroupTwilio, inbox.GroupMeta, inbox.GroupEmail} {
		for _, p := range probs[g] {
			bad("%s", p)
		}
	}
	if c.IngestWorkers == 0 {
		c.IngestWorkers = 1
		if !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
			c.IngestWorkers = 4
		}
	}
	return errors.Join(errs...)
}
