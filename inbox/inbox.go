// Package inbox is Switchboard's service layer: every operation agents and
// automations perform (reply, note, assign, change status, merge, agents'
// status and administration, acknowledgements, presence), and every change
// the channels and the router make, implemented once. Each operation
// checks the actor's role (docs/design.md §4.1) and the channel's policy, writes
// through the store in one transaction, and publishes its typed real-time
// event after the commit. The JSON API, the router, the ingest pipeline,
// the outbox and the channels are thin callers; nothing else writes
// through the store.
package inbox

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/store"
)

// Config is what Open needs.
type Config struct {
	// DatabaseURL is "sqlite:PATH" or "postgres://...".
	DatabaseURL string
	// MaxOpenConns caps PostgreSQL connections (default 16).
	MaxOpenConns int
	// CacheBytes is SQLite's page cache, all connections together
	// (default store.DefaultCacheBytes).
	CacheBytes int64
	Clock      switchboard.Clock // default: the system clock
	Bus        switchboard.Bus   // nil: changes are not announced
	// Presence keeps who views and types where (default: in memory, for
	// one instance).
	Presence switchboard.Presence
	Blobs    switchboard.BlobStore
	Logger   *slog.Logger
	// ReopenWindow is how long after resolution a customer's message
	// reopens the conversation rather than starting one (default 7 days).
	ReopenWindow time.Duration
	// URLTTL is how long attachment URLs in answers and events live
	// (default 1 hour).
	URLTTL time.Duration
	// ResponseTargets are the first-response targets per channel
	// (default DefaultResponseTargets; a channel left out keeps its
	// default).
	ResponseTargets map[switchboard.Channel]time.Duration
	// SecretsKey (32 bytes or more) seals the secrets among the stored
	// settings; without it none can be stored.
	SecretsKey []byte
}

// Service is the inbox. Its methods are safe for concurrent use once it
// is wired (SetChannels, the On* hooks) before serving.
type Service struct {
	store  *store.DB
	bus    switchboard.Bus
	blobs  switchboard.BlobStore
	clock  switchboard.Clock
	log    *slog.Logger
	reopen time.Duration
	urlTTL time.Duration

	presence switchboard.Presence
	searches chan struct{} // a token per full-text search running

	watchMu sync.Mutex
	watched map[string]string // conversation -> presence last announced

	stats chatStats // the live-chat widget's typical response time

	ingested      chan ingested // committed batches the announcer publishes
	announcerDone chan struct{}
	closeMu       sync.RWMutex // held to send on ingested; closed is set under it
	closed        bool

	mu       sync.RWMutex
	policies map[switchboard.Channel]switchboard.Policy
	senders  map[switchboard.Channel]switchboard.Sender
	// replyQueued is called after a reply is queued (the outbox's
	// notify); routingChanged after anything that may let the router
	// assign a waiting conversation (its wake).
	replyQueued    func()
	routingChanged func(conversationIDs ...string)

	targets       map[switchboard.Channel]time.Duration
	noRollups     bool    // tests only: analytics read raw rows
	sealer        *sealer // nil: no secrets key
	linkKey       []byte  // signs survey links; nil: no secrets key
	settingsHooks SettingsHooks
}

// Open opens the store at cfg.DatabaseURL, applying pending migrations,
// and returns the service over it.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Clock == nil {
		cfg.Clock = switchboard.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReopenWindow <= 0 {
		cfg.ReopenWindow = 7 * 24 * time.Hour
	}
	if cfg.Presence == nil {
		cfg.Presence = bus.NewMemoryPresence(cfg.Clock)
	}
	if cfg.URLTTL <= 0 {
		cfg.URLTTL = time.Hour
	}
	var seal *sealer
	var linkKey []byte
	if len(cfg.SecretsKey) > 0 {
		var err error
		if seal, err = newSealer(cfg.SecretsKey); err != nil {
			return nil, err
		}
		if linkKey, err = hkdf.Key(sha256.New, cfg.SecretsKey, nil, "switchboard survey links v1", 32); err != nil {
			return nil, fmt.Errorf("inbox: derive the survey link key: %w", err)
		}
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Clock: cfg.Clock, MaxOpenConns: cfg.MaxOpenConns, CacheBytes: cfg.CacheBytes})
	if err != nil {
		return nil, err
	}
	s := &Service{
		store: db, bus: cfg.Bus, blobs: cfg.Blobs, clock: cfg.Clock, log: cfg.Logger,
		reopen: cfg.ReopenWindow, urlTTL: cfg.URLTTL,
		policies: map[switchboard.Channel]switchboard.Policy{}, senders: map[switchboard.Channel]switchboard.Sender{},
		presence: cfg.Presence, sealer: seal, linkKey: linkKey, targets: maps.Clone(DefaultResponseTargets),
		searches: make(chan struct{}, MaxSearches),
		watched:  map[string]string{},
		// Enough committed batches to ride out a slow read; a full queue
		// holds up Ingest, which is the backpressure wanted.
		ingested: make(chan ingested, 64), announcerDone: make(chan struct{}),
	}
	maps.Copy(s.targets, cfg.ResponseTargets)
	go s.announceIngested()
	return s, nil
}

// Close announces what was ingested and not yet announced, then closes
// the store. Close the bus after it.
func (s *Service) Close() error {
	s.closeMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ingested)
	}
	s.closeMu.Unlock()
	<-s.announcerDone
	return s.store.Close()
}

// Dialect names the database: "sqlite" or "postgres".
func (s *Service) Dialect() string { return s.store.Dialect() }

// Ping checks that the database answers.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.clock.Now() }

// SetChannel makes replies on ch possible: sender delivers them and policy
// (which may be nil: no rules beyond a non-empty message) says what may be
// sent now. A channel never set cannot carry replies.
func (s *Service) SetChannel(ch switchboard.Channel, policy switchboard.Policy, sender switchboard.Sender) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if policy != nil {
		s.policies[ch] = policy
	}
	s.senders[ch] = sender
}

// ChannelParts are what SwapChannels installs for a channel.
type ChannelParts struct {
	Policy switchboard.Policy
	Sender switchboard.Sender
}

// SwapChannels replaces, at once, what carries replies on each channel of
// managed: the channels in parts get theirs, the others none. The process
// calls it when an admin changes the channels' settings.
func (s *Service) SwapChannels(managed []switchboard.Channel, parts map[switchboard.Channel]ChannelParts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range managed {
		delete(s.policies, ch)
		delete(s.senders, ch)
		if p, ok := parts[ch]; ok {
			if p.Policy != nil {
				s.policies[ch] = p.Policy
			}
			s.senders[ch] = p.Sender
		}
	}
}

// Sender returns what sends replies on ch now, or nil.
func (s *Service) Sender(ch switchboard.Channel) switchboard.Sender {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.senders[ch]
}

func (s *Service) channel(ch switchboard.Channel) (switchboard.Policy, switchboard.Sender) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.policies[ch], s.senders[ch]
}

// OnReplyQueued sets what is called after a reply is queued for sending.
func (s *Service) OnReplyQueued(fn func()) { s.replyQueued = fn }

// OnRoutingChange sets what is called after a change that may let the
// router assign a waiting conversation: a resolution, an assignment
// changed by hand, an agent's status, caps or skills, the configuration.
// It names the conversations the change was about, if any: they may
// wait now and need deciding.
func (s *Service) OnRoutingChange(fn func(conversationIDs ...string)) { s.routingChanged = fn }

func (s *Service) wakeRouter(conversationIDs ...string) {
	if s.routingChanged != nil {
		s.routingChanged(conversationIDs...)
	}
}

// sign is the view.Signer of the service's object store.
func (s *Service) sign(ctx context.Context, key string) (string, error) {
	if s.blobs == nil {
		return "", nil
	}
	return s.blobs.URL(ctx, key, s.urlTTL)
}

// require refuses an actor whose role is below min.
func require(actor switchboard.Actor, min switchboard.Role, what string) error {
	if !actor.Role.AtLeast(min) {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only %ss and above %s", min, what)
	}
	return nil
}

// IngestStats returns the store's ingest counters (the benchmark prints them).
func (s *Service) IngestStats() *store.IngestStats { return s.store.Stats() }

// RawCommitRate measures the database's raw limit beside which the
// benchmark reports ingestion: n single-row commits with the store's own
// settings.
func (s *Service) RawCommitRate(ctx context.Context, n int) (float64, error) {
	return s.store.RawCommitRate(ctx, n)
}

// Analyze refreshes the database's planner statistics (after a bulk load).
func (s *Service) Analyze(ctx context.Context) error { return s.store.Analyze(ctx) }
