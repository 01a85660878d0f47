package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/channel/livechat"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/webform"
	"github.com/switchboard-inbox/switchboard/connect"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/ingest"
	"github.com/switchboard-inbox/switchboard/metrics"
	"github.com/switchboard-inbox/switchboard/outbox"
	"github.com/switchboard-inbox/switchboard/queue"
	"github.com/switchboard-inbox/switchboard/realtime"
	"github.com/switchboard-inbox/switchboard/route/dispatch"
	"github.com/switchboard-inbox/switchboard/server"
	"github.com/switchboard-inbox/switchboard/web"
)

// Main is one running Switchboard: it opens every part the configuration
// names, wires them together and runs them until Close. It holds no rule
// of its own: those live in the inbox (package inbox), the channels and
// the router.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Clock, when set, is the time every part reads (tests move it).
	Clock switchboard.Clock
	// ProviderHTTP, when set, is the HTTP client for calls to providers
	// (tests and the demo point it at local stand-ins with their own TLS
	// certificates).
	ProviderHTTP *http.Client
	// ExtraRoutes are mounted beside the webhooks (the demo serves its
	// stand-in recordings this way).
	ExtraRoutes map[string]http.Handler
	// OnStored is passed to the ingest pipeline (bench and tests use it).
	OnStored func([]switchboard.Inbound, []switchboard.IngestResult)

	Inbox      *inbox.Service
	Queue      switchboard.Queue
	Bus        switchboard.Bus
	Blobs      switchboard.BlobStore
	Metrics    *metrics.Metrics
	Pipeline   *ingest.Pipeline
	Outbox     *outbox.Worker
	Dispatcher *dispatch.Dispatcher
	Hub        *realtime.Hub
	Livechat   *livechat.Handler
	Connect    *connect.Service

	// SettingsPoll is how often stored channel settings are looked for
	// (default 5s); SurveyPoll how often due surveys are (default a
	// quarter of the survey delay, between 1s and 30s).
	SettingsPoll time.Duration
	SurveyPoll   time.Duration

	chans      channels // the provider channels in use
	signingKey []byte

	redis    *redis.Client
	listener net.Listener
	http     *http.Server
	metrics  *http.Server // SWITCHBOARD_METRICS_ADDR
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// NewLogger builds the process logger from the configuration.
func NewLogger(c Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Open opens the store, queue, bus and object store, starts the ingest
// pipeline and outbox worker, and starts listening. On error everything
// opened so far is closed.
func (m *Main) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := m.Config.Validate(); err != nil {
		return err
	}
	c := &m.Config
	if m.Logger == nil {
		m.Logger = NewLogger(*c, os.Stderr)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	m.Metrics = metrics.New()
	if m.Clock == nil {
		m.Clock = switchboard.SystemClock{}
	}
	var presence switchboard.Presence
	if c.RedisURL != "" {
		opts, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			return fmt.Errorf("config: SWITCHBOARD_REDIS_URL: %w", err)
		}
		m.redis = redis.NewClient(opts)
		if err := m.redis.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("connect to redis: %w", err)
		}
		if err := queue.CheckDurable(ctx, m.redis); err != nil {
			if !c.RedisAllowVolatile {
				return fmt.Errorf("%w; or set SWITCHBOARD_REDIS_ALLOW_VOLATILE=true (--redis-allow-volatile) to accept that risk", err)
			}
			m.Logger.Warn("the inbound queue may lose acknowledged messages if Redis crashes or restarts (allowed by SWITCHBOARD_REDIS_ALLOW_VOLATILE)", "err", err)
		}
		m.Queue = queue.NewRedis(m.redis, queue.RedisOptions{Prefix: c.RedisPrefix + "inbound:", Consumer: queue.ConsumerName(c.Addr), MinIdle: c.QueueReclaimAfter})
		m.Bus = bus.NewRedis(m.redis, c.RedisPrefix+"events", bus.WithLog(c.EventLog, 0))
		presence = bus.NewRedisPresence(m.redis, c.RedisPrefix)
	} else {
		if !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
			m.Logger.Warn("no SWITCHBOARD_REDIS_URL: the inbound queue is a file in the data directory, so run only one instance")
		}
		if m.Queue, err = queue.OpenSQLite(ctx, filepath.Join(c.DataDir, "queue.db"), queue.WithVisibility(c.QueueReclaimAfter)); err != nil {
			return err
		}
		m.Bus = bus.NewMemory(bus.WithLog(c.EventLog, 0))
		presence = bus.NewMemoryPresence(m.Clock)
	}
	key, err := blobKey(c.BlobKey, c.DataDir)
	if err != nil {
		return err
	}
	if m.Blobs, err = blob.Open(ctx, c.BlobURL, c.PublicURL, key); err != nil {
		return err
	}
	m.Inbox, err = inbox.Open(ctx, inbox.Config{
		DatabaseURL: c.DatabaseURL, Clock: m.Clock, Bus: m.Bus, Presence: presence, Blobs: m.Blobs, Logger: m.Logger, ReopenWindow: c.ReopenWindow,
		CacheBytes: int64(c.SQLiteCacheMB) << 20, SecretsKey: key, ResponseTargets: c.responseTargets,
	})
	if err != nil {
		return err
	}
	m.Metrics.Registry.NewGaugeFunc("switchboard_routing_waiting", "Conversations waiting for an agent.", func(ctx context.Context) (float64, error) {
		n, err := m.Inbox.WaitingCount(ctx)
		return float64(n), err
	})
	m.Metrics.Registry.NewGaugeFunc("switchboard_queue_depth", "Inbound entries not yet stored.", func(ctx context.Context) (float64, error) {
		n, err := m.Queue.Depth(ctx)
		return float64(n), err
	})

	srv := &server.Server{
		Inbox: m.Inbox, Queue: m.Queue, Metrics: m.Metrics, Logger: m.Logger, MetricsToken: c.MetricsToken,
		Webhooks: map[string]http.Handler{}, PublicURL: c.PublicURL, TrustProxy: c.TrustProxy,
	}
	if srv.Pages, err = web.NewPages(m.Inbox, m.Logger, m.Clock); err != nil {
		return err
	}
	srv.Pages.PublicURL = c.PublicURL
	m.Connect = &connect.Service{Inbox: m.Inbox, Current: m.connectSettings, PublicURL: c.PublicURL, HTTP: m.ProviderHTTP, Clock: m.Clock, Logger: m.Logger, DNSResolver: c.DNSResolver}
	srv.Pages.Connect = m.Connect
	srv.ChannelHealth = func(ctx context.Context, actor switchboard.Actor) (any, error) { return m.Connect.Health(ctx, actor) }
	if h, ok := m.Blobs.(interface{ Handler() http.Handler }); ok {
		srv.BlobHandler = h.Handler()
	}
	form := m.formHandler()
	srv.Webhooks["POST /forms/{form}"] = form
	srv.Webhooks["OPTIONS /forms/{form}"] = form
	srv.Webhooks["GET /widget.js"] = web.Widget()
	m.signingKey = key
	for pattern := range channelRoutes {
		srv.Webhooks[pattern] = m.channelRoute(pattern)
	}
	m.Inbox.SetSettingsHooks(inbox.SettingsHooks{
		Env: envSettings(*c), Check: m.checkSettings,
		Changed: func() { m.reloadChannels(context.WithoutCancel(ctx)) },
	})
	m.reloadChannels(ctx)
	if m.chans.current == nil {
		return errors.New("channel settings could not be read")
	}
	m.wireLivechat(srv, key)
	for pattern, h := range m.ExtraRoutes {
		srv.Webhooks[pattern] = h
	}

	m.Pipeline = &ingest.Pipeline{
		Queue: m.Queue, Inbox: m.Inbox, Metrics: m.Metrics, Logger: m.Logger, Clock: m.Clock,
		BatchSize: c.IngestBatch, Workers: c.IngestWorkers, OnStored: m.onStored,
	}
	m.Outbox = &outbox.Worker{Inbox: m.Inbox, Senders: m.Inbox, Metrics: m.Metrics, Logger: m.Logger, Clock: m.Clock, MaxAttempts: c.OutboxMaxAttempts}
	m.Inbox.OnReplyQueued(m.Outbox.Notify)
	m.Hub = &realtime.Hub{Inbox: m.Inbox, Bus: m.Bus, Logger: m.Logger, Authenticate: srv.AuthenticateSocket}
	srv.Realtime = m.Hub
	m.Metrics.Registry.NewGaugeFunc("switchboard_realtime_sockets", "Agents' sockets open on this instance.", func(context.Context) (float64, error) {
		return float64(m.Hub.Clients()), nil
	})
	m.Metrics.Registry.RegisterRuntime()
	if !c.RoutingOff {
		m.Dispatcher = &dispatch.Dispatcher{Inbox: m.Inbox, Logger: m.Logger, Clock: m.Clock, OfflineGrace: c.OfflineGrace}
		m.Inbox.OnRoutingChange(m.Dispatcher.Changed)
		m.Hub.OnConnect, m.Hub.OnDisconnect = m.Dispatcher.Connected, m.Dispatcher.Disconnected
	}

	if m.listener, err = net.Listen("tcp", c.Addr); err != nil {
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	m.http = &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.chans.mu.Lock()
	m.chans.runCtx = runCtx
	m.startChannelWork(m.chans.current)
	m.chans.mu.Unlock()
	m.goRun(func() { m.watchSettings(runCtx) })
	m.goRun(func() { m.Pipeline.Run(runCtx) })
	m.goRun(func() { m.Outbox.Run(runCtx) })
	// Subscribed before serving, so that no event published from now on
	// misses the sockets.
	hubEvents, err := m.Bus.Subscribe(runCtx)
	if err != nil {
		return fmt.Errorf("subscribe to events: %w", err)
	}
	m.goRun(func() { m.Hub.Forward(hubEvents) })
	chatEvents, err := m.Bus.Subscribe(runCtx)
	if err != nil {
		return fmt.Errorf("subscribe to events: %w", err)
	}
	m.goRun(func() { m.Livechat.Run(runCtx, chatEvents) })
	m.goRun(func() { m.Inbox.RunPresence(runCtx, 500*time.Millisecond) })
	if !c.CSATOff {
		m.goRun(func() { m.runSurveys(runCtx) })
	}
	m.goRun(func() { m.warmAnalytics(runCtx) })
	if m.Dispatcher != nil {
		m.goRun(func() { m.Dispatcher.Run(runCtx) })
		if c.ClassifierRetrain > 0 {
			m.goRun(func() { dispatch.Retrain(runCtx, m.Inbox, c.ClassifierRetrain, m.Logger) })
		}
	}
	m.goRun(func() {
		if err := m.http.Serve(m.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("http serve", "err", err)
		}
	})
	if c.MetricsAddr != "" {
		l, err := net.Listen("tcp", c.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on %s (SWITCHBOARD_METRICS_ADDR): %w", c.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		m.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn)}
		m.goRun(func() {
			if err := m.metrics.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.Logger.Error("metrics serve", "err", err)
			}
		})
	}
	m.Logger.Info("switchboard listening", "addr", m.listener.Addr().String(), "database", m.Inbox.Dialect(),
		"queue", fmt.Sprintf("%T", m.Queue), "blobs", fmt.Sprintf("%T", m.Blobs))
	return nil
}

// wireLivechat serves the visitor API (docs/design.md §6.2) and turns on
// replies on livechat, with the e-mail fallback when e-mail is set up.
func (m *Main) wireLivechat(srv *server.Server, key []byte) {
	c := m.Config
	m.Livechat = livechat.New(livechat.Config{
		Inbox: m.Inbox, Queue: m.Queue, Tokens: livechat.NewTokens(key), Logger: m.Logger, Clock: m.Clock,
		// Visitors are marked connected this often: well inside the time
		// after which replies go by e-mail.
		Heartbeat:  min(20*time.Second, max(c.LivechatEmailAfter/3, 100*time.Millisecond)),
		OnAccepted: func() { m.Metrics.Accepted.Add(string(switchboard.ChannelLivechat), 1) },
		OnRejected: func(code refusal.Code) { m.Metrics.Rejected.Add(string(switchboard.ChannelLivechat), string(code), 1) },
	})
	for pattern, h := range m.Livechat.Routes() {
		srv.Webhooks[pattern] = h
	}
	ch := &livechat.Channel{Inbox: m.Inbox, Email: func() switchboard.Sender { return m.Inbox.Sender(switchboard.ChannelEmail) }, EmailAfter: c.LivechatEmailAfter, Clock: m.Clock}
	m.Inbox.SetChannel(switchboard.ChannelLivechat, ch, ch)
}

// runSurveys sends satisfaction surveys as they fall due.
func (m *Main) runSurveys(ctx context.Context) {
	c := m.Config
	cfg := inbox.SurveyConfig{Delay: c.csatDelay, PublicURL: c.PublicURL}
	every := min(30*time.Second, max(time.Second, c.csatDelay/4))
	if m.SurveyPoll > 0 {
		every = m.SurveyPoll
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			n, err := m.Inbox.SendDueSurveys(ctx, cfg)
			if err != nil && ctx.Err() == nil {
				m.Logger.Error("surveys", "err", err)
			}
			if err != nil || n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// warmAnalytics keeps the analytics' daily rollups built: a minute after
// starting (out of the way of a busy start), then every six hours.
func (m *Main) warmAnalytics(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.Inbox.WarmAnalytics(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Error("analytics rollups", "err", err)
		}
		t.Reset(6 * time.Hour)
	}
}

func (m *Main) goRun(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
}

func (m *Main) formHandler() *webform.Handler {
	c := m.Config
	f := webform.Form{ThankYouURL: c.FormThanksURL}
	for _, o := range strings.Split(c.FormOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			f.AllowedOrigins = append(f.AllowedOrigins, o)
		}
	}
	rl := webform.RateLimit{Disabled: c.FormRatePerMinute == 0}
	if c.FormRatePerMinute > 0 {
		rl.Interval = time.Minute / time.Duration(c.FormRatePerMinute)
		rl.Burst = min(5, c.FormRatePerMinute)
	}
	return webform.New(webform.Config{
		Queue:      m.Queue,
		Clock:      m.Clock,
		Forms:      map[string]webform.Form{webform.DefaultFormID: f},
		Logger:     m.Logger,
		RateLimit:  rl,
		TrustProxy: c.TrustProxy,
		OnAccepted: func(string, string) {
			m.Metrics.Accepted.Add(string(switchboard.ChannelWebform), 1)
		},
		OnRejected: func(_ string, code refusal.Code) {
			m.Metrics.Rejected.Add(string(switchboard.ChannelWebform), string(code), 1)
		},
	})
}

// URL is the address the server listens on, as an http URL.
func (m *Main) URL() string { return "http://" + m.listener.Addr().String() }

// Close stops accepting requests, lets in-flight ones finish, stops the
// workers and closes everything. Entries a worker held when it stopped are
// delivered again later: nothing accepted is lost.
func (m *Main) Close() error {
	var errs []error
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
	} else if m.listener != nil {
		m.listener.Close()
	}
	if m.metrics != nil {
		errs = append(errs, m.metrics.Close())
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.Queue != nil {
		errs = append(errs, m.Queue.Close())
	}
	// The inbox announces what it has stored before the bus closes.
	if m.Inbox != nil {
		errs = append(errs, m.Inbox.Close())
	}
	if m.Bus != nil {
		errs = append(errs, m.Bus.Close())
	}
	if c, ok := m.Blobs.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if m.redis != nil {
		errs = append(errs, m.redis.Close())
	}
	return errors.Join(errs...)
}

// blobKey returns the key that signs local file URLs: configured (Validate
// checks its length), else one generated once and kept in the data
// directory.
func blobKey(configured, dataDir string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	path := filepath.Join(dataDir, "blob.key")
	if k, err := os.ReadFile(path); err == nil && len(k) >= 32 {
		return k, nil
	}
	k := make([]byte, 32)
	rand.Read(k)
	if err := os.WriteFile(path, k, 0o600); err != nil {
		return nil, fmt.Errorf("write blob signing key: %w", err)
	}
	return k, nil
}
