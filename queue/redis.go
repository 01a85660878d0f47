package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	switchboard "github.com/switchboard-inbox/switchboard"
)

// RedisOptions configures a Redis Streams queue. Zero values take defaults.
type RedisOptions struct {
	// Prefix is prepended to the channel name to form each stream's key.
	// Default "switchboard:inbound:". On Redis Cluster put a hash tag in it
	// (e.g. "{switchboard}:inbound:"): XREADGROUP reads all streams at once,
	// which needs them in one slot.
	Prefix string
	// Group is the consumer group every ingest instance joins. Default "ingest".
	Group string
	// Consumer names this process within the group: unique among live
	// processes, and best the same after a restart, since Receive first
	// takes back what this name left pending (ConsumerName makes one).
	// Only Receive needs it: an instance that only enqueues may leave it
	// empty.
	Consumer string
	// MinIdle is how long an entry must sit unacked with another consumer
	// before this one takes it over, assuming that consumer died. It must
	// exceed the longest time the pipeline takes over one batch. Default 30s.
	MinIdle time.Duration
	// Block bounds each blocking XREADGROUP. go-redis cannot abort a command
	// in flight, so this is also how long a cancelled Receive may take to
	// return. Default 500ms.
	Block time.Duration
	// ReclaimInterval is how often each stream is scanned for entries held
	// by dead consumers. Default 1s.
	ReclaimInterval time.Duration
}

const (
	defaultRedisPrefix = "switchboard:inbound:"
	defaultRedisGroup  = "ingest"
	defaultMinIdle     = 30 * time.Second
	defaultBlock       = 500 * time.Millisecond
	defaultReclaim     = time.Second
	payloadField       = "payload"
)

// Redis is a switchboard.Queue on Redis Streams: one stream per channel
// (Prefix+channel), one consumer group on each. Enqueue is XADD, so an entry
// is durable as far as Redis is: production Redis must run with appendonly
// yes (appendfsync everysec loses at most about a second of entries on a
// Redis crash, always loses none), or entries die with a Redis restart.
// Acked entries are deleted, so XLEN is the number not yet acked.
//
// Close does not close the client, which the caller owns.
type Redis struct {
	c    *redis.Client
	opts RedisOptions

	groupsReady atomic.Bool
	// readNext is the stream a read offers entries to first: the one after
	// the last stream served, so that with a small max, streams take turns.
	readNext    atomic.Uint64
	reclaimTurn atomic.Uint64 // rotates the stream scanned first

	mu      sync.Mutex
	reclaim []reclaimState         // per channel, in switchboard.Channels order
	carry   []switchboard.Delivery // read beyond max, returned first next time

	// Taking back what this consumer name left pending in a previous run:
	// own holds, per channel, the id to read our pending list after ("" once
	// read to the end); ownDone is set when every stream is.
	ownMu   sync.Mutex
	own     []string
	ownDone atomic.Bool

	closing   chan struct{}
	closeOnce sync.Once
}

type reclaimState struct {
	next   time.Time // earliest time of the next XAUTOCLAIM
	cursor string    // where the last scan of the pending list stopped
}

var _ switchboard.Queue = (*Redis)(nil)

// ConsumerName names this process's consumer after its host and the
// address it listens on, "host/addr". Receive takes back at once what a
// consumer of the same name left pending, so the name must be:
//
//   - stable across restarts of one instance: the same host and listen
//     address, whatever the pid or the data directory (which a stateless
//     instance may not keep);
//   - never shared by two live processes: two processes on one host cannot
//     listen on the same address, and serve receives only once it listens,
//     so a second process started by mistake with the same address fails
//     before it could take anything. (A process shutting down closes its
//     listener before its last batch is done; a successor quick enough to
//     take that batch back processes it again, and ingest's deduplication
//     absorbs it.)
//
// Where addr gives no such identity (empty, or port 0: a new port each
// start) or the host name is unknown, it returns hostname-pid-random,
// unique but new on each start: entries a dead process held then wait
// MinIdle for another consumer. Instances must run on hosts with distinct
// names (containers have their own by default).
func ConsumerName(addr string) string {
	host, err := os.Hostname()
	if err == nil && host != "" && addr != "" {
		if _, port, err := net.SplitHostPort(addr); err == nil && port != "" && port != "0" {
			return host + "/" + addr
		}
	}
	if host == "" {
		host = "switchboard"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// NewRedis returns a queue on client's Redis. It does no I/O: the consumer
// groups are created on first Receive.
func NewRedis(client *redis.Client, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = defaultRedisPrefix
	}
	if opts.Group == "" {
		opts.Group = defaultRedisGroup
	}
	if opts.MinIdle <= 0 {
		opts.MinIdle = defaultMinIdle
	}
	if opts.Block <= 0 {
		opts.Block = defaultBlock
	}
	if opts.ReclaimInterval <= 0 {
		opts.ReclaimInterval = defaultReclaim
	}
	rs := make([]reclaimState, len(switchboard.Channels))
	own := make([]string, len(switchboard.Channels))
	for i := range rs {
		rs[i].cursor = "0-0"
		own[i] = "0-0"
	}
	return &Redis{c: client, opts: opts, reclaim: rs, own: own, closing: make(chan struct{})}
}

func (q *Redis) key(ch switchboard.Channel) string { return q.opts.Prefix + string(ch) }

func (q *Redis) closed() bool {
	select {
	case <-q.closing:
		return true
	default:
		return false
	}
}

// Enqueue appends the payload to the channel's stream.
func (q *Redis) Enqueue(ctx context.Context, ch switchboard.Channel, payload []byte) error {
	if err := validate(ch); err != nil {
		return err
	}
	if q.closed() {
		return ErrClosed
	}
	// No MAXLEN: trimming would drop entries nobody has acked.
	err := q.c.XAdd(ctx, &redis.XAddArgs{Stream: q.key(ch), Values: []any{payloadField, payload}}).Err()
	if err != nil {
		return fmt.Errorf("queue: enqueue %s: %w", ch, err)
	}
	return nil
}

// ensureGroups creates the group on every stream, reading from the start of
// the stream, so entries added before any consumer existed are delivered.
func (q *Redis) ensureGroups(ctx context.Context) error {
	if q.groupsReady.Load() {
		return nil
	}
	cmds, err := q.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, ch := range switchboard.Channels {
			p.XGroupCreateMkStream(ctx, q.key(ch), q.opts.Group, "0")
		}
		return nil
	})
	for _, c := range cmds {
		if e := c.Err(); e != nil && !isBusyGroup(e) {
			return fmt.Errorf("queue: create consumer groups: %w", e)
		}
	}
	if err != nil && len(cmds) == 0 {
		return fmt.Errorf("queue: create consumer groups: %w", err)
	}
	q.groupsReady.Store(true)
	return nil
}

func isBusyGroup(err error) bool { return redis.HasErrorPrefix(err, "BUSYGROUP") }
func isNoGroup(err error) bool   { return redis.HasErrorPrefix(err, "NOGROUP") }

// Receive first takes back what this consumer's name still held when its
// previous process died (at once: see takeBack), then takes over entries
// other dead consumers left idle longer than MinIdle, then reads new
// entries, up to max in all, fairly across streams.
func (q *Redis) Receive(ctx context.Context, max int) ([]switchboard.Delivery, error) {
	if err := validateMax(max); err != nil {
		return nil, err
	}
	if q.opts.Consumer == "" {
		return nil, fmt.Errorf("queue: receive: %w", switchboard.Errorf(switchboard.EINVALID, "RedisOptions.Consumer is required to receive"))
	}
	if q.closed() {
		return nil, ErrClosed
	}
	if out := q.takeCarry(max); len(out) > 0 {
		return out, nil
	}
	for {
		if q.closed() {
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("queue: receive: %w", err)
		}
		if err := q.ensureGroups(ctx); err != nil {
			return nil, err
		}
		// Claims and new reads add to our pending list: only once
		// takeBack has read it through, or it would hand them out again.
		out, err := q.takeBack(ctx, max)
		if err == nil && len(out) == 0 && q.ownDone.Load() {
			out, err = q.reclaimIdle(ctx, max)
		}
		if err == nil && len(out) < max && q.ownDone.Load() {
			block := time.Duration(-1) // no BLOCK argument: don't wait when reclaim found work
			if len(out) == 0 {
				block = q.opts.Block
				if dl, ok := ctx.Deadline(); ok {
					block = min(block, time.Until(dl))
				}
				if block < time.Millisecond {
					block = -1 // BLOCK 0 would mean for ever
				}
			}
			var more []switchboard.Delivery
			more, err = q.read(ctx, max-len(out), block)
			out = append(out, more...)
		}
		if len(out) > max {
			q.putCarry(out[max:])
			out = out[:max]
		}
		if len(out) > 0 {
			// Even after an error: these are in our pending list already;
			// hand them over rather than leave them to wait for MinIdle.
			return out, nil
		}
		if isNoGroup(err) {
			// Someone deleted a stream (and its group): make them again.
			q.groupsReady.Store(false)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("queue: receive: %w", ctx.Err())
			}
			return nil, err
		}
	}
}

// takeBack returns the entries still pending for this consumer name from
// before this process started: a previous process of the same instance
// died holding them. No live process can be working on them (a name
// belongs to one live process), so they need not sit out MinIdle. It
// reads the pending list itself (XREADGROUP from an id instead of ">"),
// which returns only our entries and resets their idle time, so no other
// consumer takes them over meanwhile. Until every stream's list has been
// read to the end, Receive neither reads nor claims: those entries would
// join the list and be handed out twice. Receivers take turns on it, each
// continuing where the last stopped; what one read returns beyond max is
// carried over, fairly mixed across streams.
func (q *Redis) takeBack(ctx context.Context, max int) ([]switchboard.Delivery, error) {
	if q.ownDone.Load() {
		return nil, nil
	}
	q.ownMu.Lock()
	defer q.ownMu.Unlock()
	chans := switchboard.Channels
	var streams, ids []string
	for i, ch := range chans {
		if q.own[i] != "" {
			streams = append(streams, q.key(ch))
			ids = append(ids, q.own[i])
		}
	}
	if len(streams) == 0 {
		return nil, nil // another receiver finished while we waited
	}
	res, err := q.c.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: q.opts.Group, Consumer: q.opts.Consumer, Streams: append(streams, ids...),
		Count: int64(max), Block: -1,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: receive: take back pending entries: %w", err)
	}
	got := map[string][]redis.XMessage{}
	for _, s := range res {
		got[s.Stream] = s.Messages
	}
	var per [][]switchboard.Delivery
	done := true
	for i, ch := range chans {
		if q.own[i] == "" {
			continue
		}
		msgs := got[q.key(ch)]
		if len(msgs) < max {
			q.own[i] = "" // read to the end
		} else {
			q.own[i] = msgs[len(msgs)-1].ID
			done = false
		}
		per = append(per, q.deliveries(ctx, ch, msgs))
	}
	if done {
		q.ownDone.Store(true)
	}
	// Round robin across streams, so the first max are shared fairly and
	// the rest wait in the carry.
	var out []switchboard.Delivery
	for k := 0; ; k++ {
		added := false
		for _, ds := range per {
			if k < len(ds) {
				out = append(out, ds[k])
				added = true
			}
		}
		if !added {
			return out, nil
		}
	}
}

// The carry holds entries a blocking read returned beyond max (it can when
// max is smaller than the number of streams); the next Receive returns them.
func (q *Redis) putCarry(ds []switchboard.Delivery) {
	q.mu.Lock()
	q.carry = append(q.carry, ds...)
	q.mu.Unlock()
}

func (q *Redis) takeCarry(max int) []switchboard.Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, len(q.carry))
	if n == 0 {
		return nil
	}
	out := append([]switchboard.Delivery(nil), q.carry[:n]...)
	q.carry = append(q.carry[:0], q.carry[n:]...)
	return out
}

// shares plans reads that split want entries fairly across streams: every
// stream is first offered an equal share (in groups of at most want streams
// when want is smaller than their number, so a read never returns more than
// want), then streams that used their whole share are offered what the
// others left.
type shares struct {
	untried, full []int
}

func newShares(streams []int) *shares { return &shares{untried: streams} }

// next returns the streams to read now and the share of each, want spread
// as evenly as possible (the first want%len streams get one more).
func (s *shares) next(want int) (take []int, counts []int) {
	if want <= 0 {
		return nil, nil
	}
	src := &s.untried
	if len(s.untried) == 0 {
		src = &s.full
	}
	k := min(want, len(*src))
	take = (*src)[:k:k]
	*src = (*src)[k:]
	counts = make([]int, k)
	for i := range counts {
		counts[i] = want / k
		if i < want%k {
			counts[i]++
		}
	}
	return take, counts
}

// filled records that stream i returned its whole share and may have more.
func (s *shares) filled(i int) { s.full = append(s.full, i) }

// rotated lists the streams' indices starting at start.
func rotated(start uint64) []int {
	n := len(switchboard.Channels)
	idx := make([]int, n)
	for k := range idx {
		idx[k] = (int(start%uint64(n)) + k) % n
	}
	return idx
}

// reclaimIdle runs XAUTOCLAIM on the streams whose turn has come, at most
// once per ReclaimInterval each. Claimed entries are ours at once and cannot
// be put back, so the shares keep the total within max.
func (q *Redis) reclaimIdle(ctx context.Context, max int) ([]switchboard.Delivery, error) {
	now := time.Now()
	var due []int
	q.mu.Lock()
	for _, i := range rotated(q.reclaimTurn.Add(1)) {
		if !now.Before(q.reclaim[i].next) {
			due = append(due, i)
		}
	}
	q.mu.Unlock()
	if len(due) == 0 {
		return nil, nil
	}
	type claim struct {
		idx   int
		count int
		cmd   *redis.XAutoClaimCmd
	}
	var out []switchboard.Delivery
	plan := newShares(due)
	want := max
	for {
		take, counts := plan.next(want)
		if len(take) == 0 {
			break
		}
		claims := make([]claim, 0, len(take))
		q.mu.Lock()
		for k, i := range take {
			// Take the turn now, so concurrent receivers don't scan too.
			q.reclaim[i].next = now.Add(q.opts.ReclaimInterval)
			claims = append(claims, claim{idx: i, count: counts[k]})
		}
		q.mu.Unlock()
		_, perr := q.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k := range claims {
				c := &claims[k]
				q.mu.Lock()
				cursor := q.reclaim[c.idx].cursor
				q.mu.Unlock()
				c.cmd = p.XAutoClaim(ctx, &redis.XAutoClaimArgs{
					Stream: q.key(switchboard.Channels[c.idx]), Group: q.opts.Group, Consumer: q.opts.Consumer,
					MinIdle: q.opts.MinIdle, Start: cursor, Count: int64(c.count),
				})
			}
			return nil
		})
		var firstErr error
		for _, c := range claims {
			msgs, cursor, err := c.cmd.Result()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				q.mu.Lock()
				q.reclaim[c.idx].next = time.Time{} // try again on the next Receive
				q.mu.Unlock()
				continue
			}
			q.mu.Lock()
			q.reclaim[c.idx].cursor = cursor
			q.mu.Unlock()
			want -= len(msgs)
			out = append(out, q.deliveries(ctx, switchboard.Channels[c.idx], msgs)...)
			if len(msgs) >= c.count {
				plan.filled(c.idx)
			}
		}
		if firstErr == nil && len(claims) == 0 {
			firstErr = perr
		}
		if firstErr != nil {
			return out, fmt.Errorf("queue: receive: reclaim: %w", firstErr)
		}
	}
	// Streams left untried or still full when max ran out may hold more
	// dead entries: let the next Receive continue with them at once.
	q.mu.Lock()
	for _, i := range append(plan.untried, plan.full...) {
		q.reclaim[i].next = time.Time{}
	}
	q.mu.Unlock()
	return out, nil
}

// read takes up to want new entries with XREADGROUP ">", along the shares
// plan: a quiet channel's lone entry is in the first batch however deep the
// other streams are. COUNT applies to each stream, so each read uses the
// smallest share of its streams. When every stream has been tried and none
// had anything, it waits up to block on all streams at once; that read may
// return more than want (one entry from each stream that woke), which
// Receive carries over. Only the first read of a call may wait.
func (q *Redis) read(ctx context.Context, want int, block time.Duration) ([]switchboard.Delivery, error) {
	chans := switchboard.Channels
	all := rotated(q.readNext.Load())
	plan := newShares(append([]int(nil), all...))
	var out []switchboard.Delivery
	waited := false
	last := -1 // position in all of the last stream served
	defer func() {
		if last >= 0 {
			q.readNext.Store(uint64(all[last] + 1))
		}
	}()
	for want > 0 {
		take, counts := plan.next(want)
		blk := time.Duration(-1)
		switch {
		case len(take) == len(chans) && block >= 0 && !waited:
			blk = block // every stream in one read: wait here if all are empty
			waited = true
		case len(take) == 0 && len(out) == 0 && block >= 0 && !waited:
			take, counts = all, []int{1}
			blk = block
			waited = true
		case len(take) == 0:
			return out, nil
		}
		count := counts[len(counts)-1] // the smallest share
		streams := make([]string, 0, 2*len(take))
		for _, i := range take {
			streams = append(streams, q.key(chans[i]))
		}
		for range take {
			streams = append(streams, ">")
		}
		res, err := q.c.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: q.opts.Group, Consumer: q.opts.Consumer, Streams: streams,
			Count: int64(count), Block: blk,
		}).Result()
		if errors.Is(err, redis.Nil) {
			if blk >= 0 {
				return out, nil // waited, nothing came
			}
			continue
		}
		if err != nil {
			return out, fmt.Errorf("queue: receive: xreadgroup: %w", err)
		}
		for _, s := range res {
			ch := switchboard.Channel(strings.TrimPrefix(s.Stream, q.opts.Prefix))
			want -= len(s.Messages)
			out = append(out, q.deliveries(ctx, ch, s.Messages)...)
			for k, i := range all {
				if chans[i] == ch {
					if len(s.Messages) > 0 {
						last = max(last, k)
					}
					if len(s.Messages) >= count {
						plan.filled(i)
					}
				}
			}
		}
	}
	return out, nil
}

// deliveries converts stream entries, dropping any without a payload field:
// there is nothing to process, and leaving them would redeliver them for
// ever. Dropping is best effort; one left behind is dropped when reclaimed.
func (q *Redis) deliveries(ctx context.Context, ch switchboard.Channel, msgs []redis.XMessage) []switchboard.Delivery {
	out := make([]switchboard.Delivery, 0, len(msgs))
	var junk []switchboard.Delivery
	for _, m := range msgs {
		id := string(ch) + "/" + m.ID
		var p []byte
		switch v := m.Values[payloadField].(type) {
		case string:
			p = []byte(v)
		case []byte:
			p = append([]byte{}, v...)
		default:
			junk = append(junk, switchboard.Delivery{ID: id, Channel: ch})
			continue
		}
		out = append(out, switchboard.Delivery{ID: id, Channel: ch, Payload: p})
	}
	if len(junk) > 0 {
		_ = q.ack(ctx, junk)
	}
	return out
}

// parseID splits a Delivery.ID, "channel/entry-id", back into its stream.
func parseID(id string) (switchboard.Channel, string, error) {
	i := strings.LastIndexByte(id, '/')
	if i <= 0 || i == len(id)-1 {
		return "", "", fmt.Errorf("queue: ack: malformed delivery id %q", id)
	}
	ch := switchboard.Channel(id[:i])
	if !ch.Valid() {
		return "", "", fmt.Errorf("queue: ack: delivery id %q: unknown channel", id)
	}
	return ch, id[i+1:], nil
}

// Ack acknowledges and deletes the entries, per stream, in one MULTI/EXEC so
// an entry is never left acked but undeleted (it would count in Depth for
// ever) nor deleted but pending.
func (q *Redis) Ack(ctx context.Context, ds []switchboard.Delivery) error {
	if q.closed() {
		return ErrClosed
	}
	return q.ack(ctx, ds)
}

func (q *Redis) ack(ctx context.Context, ds []switchboard.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	byChan := map[switchboard.Channel][]string{}
	var order []switchboard.Channel
	for _, d := range ds {
		ch, id, err := parseID(d.ID)
		if err != nil {
			return err
		}
		if _, ok := byChan[ch]; !ok {
			order = append(order, ch)
		}
		byChan[ch] = append(byChan[ch], id)
	}
	_, err := q.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, ch := range order {
			p.XAck(ctx, q.key(ch), q.opts.Group, byChan[ch]...)
			p.XDel(ctx, q.key(ch), byChan[ch]...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: ack: %w", err)
	}
	return nil
}

// Depth sums the streams' lengths: acked entries are deleted, so what is
// left is waiting or held by a consumer.
func (q *Redis) Depth(ctx context.Context) (int64, error) {
	if q.closed() {
		return 0, ErrClosed
	}
	cmds := make([]*redis.IntCmd, 0, len(switchboard.Channels))
	_, err := q.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, ch := range switchboard.Channels {
			cmds = append(cmds, p.XLen(ctx, q.key(ch)))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue: depth: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// Close makes further calls fail with ErrClosed; a Receive in progress
// returns within Block. Entries this consumer holds unacked (including any
// carried over) are taken back at once by the next process with the same
// consumer name, or by other consumers after MinIdle.
func (q *Redis) Close() error {
	q.closeOnce.Do(func() { close(q.closing) })
	return nil
}
