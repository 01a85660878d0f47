package inbox

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
)

// Rollups (docs/metrics.md, "Rollups"): a measure over months reads one
// stored row per UTC day, which holds that day's facts in a compact
// binary form (one entry per cycle, or per agent), instead of a row per
// cycle. The facts are kept exactly, so percentiles stay exact: a rollup
// saves reading, not precision. Days before store.RollupHorizon are
// cached; the rest of a range (yesterday and today) is read raw. The store
// invalidates a cached day in the transaction that changes its facts.

const day = 24 * time.Hour

// rollupVersion is the blobs' format: a rollup of another version is
// built again.
const rollupVersion = 2

// crcTable checks rollups: one that does not match its checksum (a torn
// or damaged row) is built again, never read.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

var errBadRollup = errors.New("inbox: a rollup is corrupt")

// blobWriter encodes a rollup: the format version, a table of the strings
// the entries name (channels, topics, agents) and the entries, as
// unsigned varints, then a CRC-32C of all that.
type blobWriter struct {
	index map[string]uint64
	table []string
	body  []byte
	n     uint64
}

func (w *blobWriter) str(s string) uint64 {
	if w.index == nil {
		w.index = map[string]uint64{}
	}
	i, ok := w.index[s]
	if !ok {
		i = uint64(len(w.table))
		w.index[s] = i
		w.table = append(w.table, s)
	}
	return i
}

// entry starts an entry with its fields.
func (w *blobWriter) entry(fields ...uint64) {
	w.n++
	w.add(fields...)
}

func (w *blobWriter) add(fields ...uint64) {
	for _, f := range fields {
		w.body = binary.AppendUvarint(w.body, f)
	}
}

func (w *blobWriter) bytes() []byte {
	out := binary.AppendUvarint(nil, rollupVersion)
	out = binary.AppendUvarint(out, uint64(len(w.table)))
	for _, s := range w.table {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	out = binary.AppendUvarint(out, w.n)
	out = append(out, w.body...)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, crcTable))
}

// blobReader decodes a rollup; after a corrupt one, err is set and every
// field reads 0.
type blobReader struct {
	b   []byte
	err error
	// ids are the string table's entries as the measure's names.
	ids []int
	n   int
}

func readBlob(b []byte, nm *names) *blobReader {
	if !usable(b) {
		return &blobReader{err: errBadRollup}
	}
	r := &blobReader{b: b[:len(b)-4]}
	if r.u() != rollupVersion {
		r.err = errBadRollup
		return r
	}
	strs := r.u()
	for range strs {
		l := r.u()
		if r.err != nil || l > uint64(len(r.b)) {
			r.err = errBadRollup
			return r
		}
		r.ids = append(r.ids, nm.of(string(r.b[:l])))
		r.b = r.b[l:]
	}
	r.n = int(r.u())
	return r
}

func (r *blobReader) u() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errBadRollup, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// id reads a string's index as the measure's name id.
func (r *blobReader) id() int {
	i := r.u()
	if i >= uint64(len(r.ids)) {
		r.err, r.b = errBadRollup, nil
		return 0
	}
	return r.ids[i]
}

// names interns the channels, topics and agents a measure meets, so that
// grouping goes by small integers.
type names struct {
	id   map[string]int
	list []string
}

func (n *names) of(s string) int {
	if n.id == nil {
		n.id = map[string]int{}
	}
	i, ok := n.id[s]
	if !ok {
		i = len(n.list)
		n.id[s] = i
		n.list = append(n.list, s)
	}
	return i
}

// rollupRange reads kind's facts over [from, to): use gets each cached
// day's rollup (building and saving those missing first, a run of days at
// a time from build), raw reads the rest. With whole, only days the range
// covers entirely are cached (their figures are totals that cannot be cut);
// otherwise use must drop the facts outside [from, to) itself.
func (s *Service) rollupRange(ctx context.Context, kind string, from, to time.Time, whole bool,
	build func(ctx context.Context, from, to time.Time) ([][]byte, error),
	use func(day time.Time, data []byte) error,
	raw func(from, to time.Time) error) error {
	if s.noRollups {
		return raw(from, to)
	}
	horizon := store.RollupHorizon(s.clock.Now())
	floor := func(t time.Time) time.Time { return t.UTC().Truncate(day) }
	ceil := func(t time.Time) time.Time {
		f := floor(t)
		if f.Before(t) {
			return f.Add(day)
		}
		return f
	}
	d0, d1 := floor(from), minTime(ceil(to), horizon)
	if whole {
		d0, d1 = ceil(from), minTime(floor(to), horizon)
	}
	if !d0.Before(d1) {
		return raw(from, to)
	}
	rollups, err := s.store.Rollups(ctx, kind, d0, d1)
	if err != nil {
		return err
	}
	for i := 0; i < len(rollups); {
		if usable(rollups[i].Data) {
			i++
			continue
		}
		j := i
		for j < len(rollups) && !usable(rollups[j].Data) {
			j++
		}
		blobs, err := build(ctx, rollups[i].Day, rollups[j-1].Day.Add(day))
		if err != nil {
			return err
		}
		for k := i; k < j; k++ {
			rollups[k].Data = blobs[k-i]
		}
		if err := s.store.SaveRollups(ctx, kind, rollups[i:j]); err != nil {
			return err
		}
		i = j
	}
	for _, r := range rollups {
		if err := use(r.Day, r.Data); err != nil {
			return err
		}
	}
	if whole && from.Before(d0) {
		if err := raw(from, d0); err != nil {
			return err
		}
	}
	if d1.Before(to) {
		return raw(maxTime(from, d1), to)
	}
	return nil
}

// usable reports a rollup of this version, intact.
func usable(data []byte) bool {
	if len(data) < 5 {
		return false
	}
	body := data[:len(data)-4]
	if v, n := binary.Uvarint(body); n <= 0 || v != rollupVersion {
		return false
	}
	return crc32.Checksum(body, crcTable) == binary.LittleEndian.Uint32(data[len(body):])
}

// byDay splits facts over the days of [from, to) by their time (µs).
type byDay[T any] struct {
	from int64
	days [][]T
}

func newByDay[T any](from, to time.Time) *byDay[T] {
	return &byDay[T]{from: from.UnixMicro(), days: make([][]T, int(to.Sub(from)/day))}
}

// start is the start (µs) of the i-th day.
func (b *byDay[T]) start(i int) int64 { return b.from + int64(i)*day.Microseconds() }

func (b *byDay[T]) add(at int64, f T) {
	if i := int((at - b.from) / day.Microseconds()); at >= b.from && i < len(b.days) {
		b.days[i] = append(b.days[i], f)
	}
}

// cycleEntry is a cycle in a first-response or resolution rollup: at is
// its start (first response) or its resolution, dur the time measured.
type cycleEntry struct {
	at, dur                   int64
	channel, topic, responder string
}

// encodeCycles writes a day's cycles, in time order, as offsets from the
// day's start (each from the one before).
func encodeCycles(dayStart int64, es []cycleEntry, topics bool) []byte {
	slices.SortFunc(es, func(a, b cycleEntry) int { return int(a.at - b.at) })
	var w blobWriter
	last := dayStart
	for _, e := range es {
		w.entry(w.str(e.channel), w.str(e.responder), uint64(e.at-last), uint64(e.dur))
		if topics {
			w.add(w.str(e.topic))
		}
		last = e.at
	}
	return w.bytes()
}

// decodeCycles calls fn with each cycle of a rollup encodeCycles wrote
// for the day starting at dayStart.
func decodeCycles(dayStart int64, data []byte, nm *names, topics bool, fn func(channel, responder, topic int, at, dur int64)) error {
	r := readBlob(data, nm)
	at := dayStart
	for range r.n {
		ch, resp := r.id(), r.id()
		at += int64(r.u())
		dur := int64(r.u())
		topic := -1
		if topics {
			topic = r.id()
		}
		if r.err != nil {
			return r.err
		}
		fn(ch, resp, topic, at, dur)
	}
	return r.err
}

// firstResponseOf and resolutionOf are the one place a cycle's durations
// are worked out, for rollups and raw reads alike: from its start to its
// first response (answered cycles only) or its resolution, never below 0.
func firstResponseOf(c *store.CycleFact) (cycleEntry, bool) {
	return cycleEntry{at: c.Started, dur: max(0, c.Responded-c.Started), channel: string(c.Channel), responder: c.Responder}, c.Responded != 0
}

func resolutionOf(c *store.CycleFact) cycleEntry {
	return cycleEntry{at: c.Resolved, dur: max(0, c.Resolved-c.Started), channel: string(c.Channel), topic: c.Topic, responder: c.Responder}
}

func (s *Service) buildCycles(started bool) func(ctx context.Context, from, to time.Time) ([][]byte, error) {
	return func(ctx context.Context, from, to time.Time) ([][]byte, error) {
		days := newByDay[cycleEntry](from, to)
		var err error
		if started {
			err = s.store.EachCycleStarted(ctx, from, to, true, func(c *store.CycleFact) {
				if e, ok := firstResponseOf(c); ok {
					days.add(e.at, e)
				}
			})
		} else {
			err = s.store.EachCycleResolved(ctx, from, to, true, func(c *store.CycleFact) {
				e := resolutionOf(c)
				days.add(e.at, e)
			})
		}
		if err != nil {
			return nil, err
		}
		out := make([][]byte, len(days.days))
		for i, es := range days.days {
			out[i] = encodeCycles(days.start(i), es, !started)
		}
		return out, nil
	}
}

// migrationEntry is a cycle in a channel-migration rollup: its start, the
// time since its conversation's cycle before it (0 for none), whether its
// customer wrote on more than one channel, and the channel pairs their
// messages went between.
type migrationEntry struct {
	at, gap int64
	multi   bool
	pairs   [][2]switchboard.Channel
}

func migrationOf(f *store.MigrationFact) migrationEntry {
	e := migrationEntry{at: f.Started}
	if f.Previous != 0 {
		e.gap = f.Started - f.Previous
	}
	for i, ch := range f.Channels {
		if ch != f.Channels[0] {
			e.multi = true
		}
		if i > 0 {
			if p := [2]switchboard.Channel{f.Channels[i-1], ch}; !slices.Contains(e.pairs, p) {
				e.pairs = append(e.pairs, p)
			}
		}
	}
	return e
}

func encodeMigration(dayStart int64, es []migrationEntry) []byte {
	slices.SortFunc(es, func(a, b migrationEntry) int { return int(a.at - b.at) })
	var w blobWriter
	last := dayStart
	for _, e := range es {
		multi := uint64(0)
		if e.multi {
			multi = 1
		}
		w.entry(uint64(e.at-last), uint64(e.gap), multi, uint64(len(e.pairs)))
		for _, p := range e.pairs {
			w.add(w.str(string(p[0])), w.str(string(p[1])))
		}
		last = e.at
	}
	return w.bytes()
}

// decodeMigration calls fn with each cycle of a rollup encodeMigration
// wrote; previous is the start of the conversation's cycle before (0 for
// none), pairs hold name ids and are reused.
func decodeMigration(dayStart int64, data []byte, nm *names, fn func(at, previous int64, multi bool, pairs [][2]int)) error {
	r := readBlob(data, nm)
	at := dayStart
	var pairs [][2]int
	for range r.n {
		at += int64(r.u())
		gap, multi, n := int64(r.u()), r.u() == 1, r.u()
		if n > uint64(len(r.b)) {
			return errBadRollup
		}
		pairs = pairs[:0]
		for range n {
			pairs = append(pairs, [2]int{r.id(), r.id()})
		}
		if r.err != nil {
			return r.err
		}
		previous := int64(0)
		if gap != 0 {
			previous = at - gap
		}
		fn(at, previous, multi, pairs)
	}
	return r.err
}

func (s *Service) buildMigration(ctx context.Context, from, to time.Time) ([][]byte, error) {
	days := newByDay[migrationEntry](from, to)
	err := s.store.EachMigrationFact(ctx, from, to, func(f *store.MigrationFact) { days.add(f.Started, migrationOf(f)) })
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(days.days))
	for i, es := range days.days {
		out[i] = encodeMigration(days.start(i), es)
	}
	return out, nil
}

// agentTime is an agent's online and busy time.
type agentTime struct{ online, busy time.Duration }

// agentTimes is each agent's time online and busy (online with a
// conversation) in [from, to), by agent id, or one entry per day of it
// with perDay.
func (s *Service) agentTimes(ctx context.Context, from, to time.Time, perDay bool) ([]map[string]*agentTime, error) {
	online, err := s.store.OnlineIntervals(ctx, from, to)
	if err != nil {
		return nil, err
	}
	assigned, err := s.store.AssignmentIntervals(ctx, from, to)
	if err != nil {
		return nil, err
	}
	n := 1
	if perDay {
		n = int(to.Sub(from) / day)
	}
	out := make([]map[string]*agentTime, n)
	for i := range out {
		out[i] = map[string]*agentTime{}
	}
	add := func(agent string, ss []span, busy bool) {
		for _, sp := range ss {
			for sp.end.After(sp.start) {
				i, end := 0, sp.end
				if perDay {
					i = int(sp.start.Sub(from) / day)
					end = minTime(end, from.Add(time.Duration(i+1)*day))
				}
				t := out[i][agent]
				if t == nil {
					t = &agentTime{}
					out[i][agent] = t
				}
				if busy {
					t.busy += end.Sub(sp.start)
				} else {
					t.online += end.Sub(sp.start)
				}
				sp.start = end
			}
		}
	}
	now := s.clock.Now()
	on, busy := clip(online, from, to, now), clip(assigned, from, to, now)
	for agent, ss := range on {
		add(agent, ss, false)
		add(agent, intersect(ss, busy[agent]), true)
	}
	return out, nil
}

func (s *Service) buildUtilization(ctx context.Context, from, to time.Time) ([][]byte, error) {
	days, err := s.agentTimes(ctx, from, to, true)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(days))
	for i, agents := range days {
		ids := make([]string, 0, len(agents))
		for id := range agents {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		var w blobWriter
		for _, id := range ids {
			w.entry(w.str(id), uint64(agents[id].online.Microseconds()), uint64(agents[id].busy.Microseconds()))
		}
		out[i] = w.bytes()
	}
	return out, nil
}

// decodeUtilization adds a utilisation rollup's agents' times to into.
func decodeUtilization(data []byte, nm *names, into map[string]*agentTime) error {
	r := readBlob(data, nm)
	for range r.n {
		agent, online, busy := r.id(), r.u(), r.u()
		if r.err != nil {
			return r.err
		}
		t := into[nm.list[agent]]
		if t == nil {
			t = &agentTime{}
			into[nm.list[agent]] = t
		}
		t.online += time.Duration(online) * time.Microsecond
		t.busy += time.Duration(busy) * time.Microsecond
	}
	return r.err
}

// nth returns the k-th smallest of a (0-based), reordering a so that
// a[:k] holds none larger and a[k+1:] none smaller: Hoare's selection,
// linear on average, where sorting every duration would be n log n.
func nth(a []int64, k int) int64 {
	lo, hi := 0, len(a)-1
	for hi-lo > 16 {
		m := lo + (hi-lo)/2
		if a[m] < a[lo] {
			a[m], a[lo] = a[lo], a[m]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[m] {
			a[hi], a[m] = a[m], a[hi]
		}
		p := a[m]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k] // between the two halves: equal to the pivot
		}
	}
	slices.Sort(a[lo : hi+1])
	return a[k]
}

// WarmAnalytics builds the rollups a year of dashboards reads that are
// missing or stale, so that the first view after an upgrade, or after
// writes to old days, does not wait for them.
func (s *Service) WarmAnalytics(ctx context.Context) error {
	to := store.RollupHorizon(s.clock.Now())
	from := to.AddDate(-1, 0, 0)
	skip := func(time.Time, []byte) error { return nil }
	none := func(time.Time, time.Time) error { return nil }
	for _, k := range []struct {
		kind  string
		build func(context.Context, time.Time, time.Time) ([][]byte, error)
	}{
		{store.RollupFirstResponse, s.buildCycles(true)}, {store.RollupResolution, s.buildCycles(false)},
		{store.RollupMigration, s.buildMigration}, {store.RollupUtilization, s.buildUtilization},
	} {
		if err := s.rollupRange(ctx, k.kind, from, to, true, k.build, skip, none); err != nil {
			return err
		}
	}
	return nil
}
