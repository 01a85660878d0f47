package store

import (
	"context"
	"database/sql"
	"slices"
	"time"
)

// Rollups are the analytics' per-day caches (docs/metrics.md, "Rollups").
// The store keeps them honest and knows nothing of their contents: each
// row has a generation that every write changing that day's facts bumps,
// in the writing transaction, and a row is valid while the generation it
// was built from is the current one.

// Rollup kinds: the measure whose facts a day holds.
const (
	RollupFirstResponse = "first_response"    // cycles by their start
	RollupResolution    = "resolution"        // cycles by their resolution
	RollupMigration     = "channel_migration" // cycles by their start, with their conversation's channels
	RollupUtilization   = "utilization"       // sessions and assignments
)

// The kinds a change to a cycle, and to the channels of a conversation's
// customer messages, invalidates.
var (
	cycleKinds         = []string{RollupFirstResponse, RollupMigration}
	migrationKinds     = []string{RollupMigration}
	firstResponseKinds = []string{RollupFirstResponse}
)

const day = 24 * time.Hour

// RollupHorizon is the end of the days that may be cached at now: the
// start of yesterday (UTC). Writes bump any day before the start of today,
// a day later, so that instances whose clocks differ by less than a day
// never cache a day another still writes without bumping.
func RollupHorizon(now time.Time) time.Time { return now.UTC().Truncate(day).Add(-day) }

// bumpsBefore is the time before which a write bumps the day it changes.
func bumpsBefore(now time.Time) int64 { return micros(now.UTC().Truncate(day)) }

// dayOf is the start (microseconds) of the UTC day holding t (microseconds).
func dayOf(t int64) int64 {
	const d = int64(day / time.Microsecond)
	if t < 0 {
		return (t - d + 1) / d * d
	}
	return t / d * d
}

// Rollup is one day's cached facts of a kind.
type Rollup struct {
	Day time.Time // UTC midnight
	// Gen is the day's generation when it was read: a rollup built after
	// that read is saved with it.
	Gen int64
	// Data is the cached facts, nil when there are none valid.
	Data []byte
}

// Rollups returns kind's rollups for the UTC days starting in [from, to),
// one per day in order, with Data nil where the day must be built. Read
// the generations before the facts a rollup is built from: a write in
// between makes the saved rollup invalid, never wrong.
func (db *DB) Rollups(ctx context.Context, kind string, from, to time.Time) ([]Rollup, error) {
	rows, err := db.query(ctx, `SELECT day, gen, built_gen, data FROM rollups WHERE kind = ? AND day >= ? AND day < ?`, kind, micros(from), micros(to))
	if err != nil {
		return nil, wrap("rollups", err)
	}
	defer rows.Close()
	found := map[int64]Rollup{}
	for rows.Next() {
		var d, gen int64
		var built sql.NullInt64
		var data []byte
		if err := rows.Scan(&d, &gen, &built, &data); err != nil {
			return nil, wrap("scan rollup", err)
		}
		r := Rollup{Day: time.UnixMicro(d).UTC(), Gen: gen}
		if built.Valid && built.Int64 == gen && data != nil {
			r.Data = data
		}
		found[d] = r
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("rollups", err)
	}
	var out []Rollup
	for t := from.UTC().Truncate(day); t.Before(to); t = t.Add(day) {
		r, ok := found[micros(t)]
		if !ok {
			r = Rollup{Day: t}
		}
		out = append(out, r)
	}
	return out, nil
}

// SaveRollups stores built rollups, each valid while its day's generation
// is still r.Gen.
func (db *DB) SaveRollups(ctx context.Context, kind string, rs []Rollup) error {
	return db.inTx(ctx, func(tx *Tx) error {
		for _, r := range rs {
			if err := tx.exec(ctx, `INSERT INTO rollups (kind, day, gen, built_gen, data) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (kind, day) DO UPDATE SET built_gen = excluded.built_gen, data = excluded.data`,
				kind, micros(r.Day), r.Gen, r.Gen, r.Data); err != nil {
				return wrap("save rollup", err)
			}
		}
		return nil
	})
}

// bumpRollups invalidates kinds' rollups of the days holding times (in
// microseconds) that are before today: their facts changed.
func (tx *Tx) bumpRollups(ctx context.Context, now time.Time, kinds []string, times ...int64) error {
	limit := bumpsBefore(now)
	var days []int64
	for _, t := range times {
		if t < limit {
			days = append(days, dayOf(t))
		}
	}
	if len(days) == 0 {
		return nil
	}
	// One order for every writer: two transactions bumping the same days
	// on PostgreSQL wait for each other instead of deadlocking.
	slices.Sort(days)
	days = slices.Compact(days)
	kinds = slices.Sorted(slices.Values(kinds))
	for _, k := range kinds {
		for _, d := range days {
			if err := tx.exec(ctx, `INSERT INTO rollups (kind, day, gen) VALUES (?, ?, 1)
				ON CONFLICT (kind, day) DO UPDATE SET gen = rollups.gen + 1`, k, d); err != nil {
				return wrap("bump rollup", err)
			}
		}
	}
	return nil
}

// conversationsChanged invalidates kinds' rollups of the days on which
// the conversations' cycles started, before today: what the conversations
// hold changed (their customer messages' channels, their cycles).
func (tx *Tx) conversationsChanged(ctx context.Context, now time.Time, kinds []string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{bumpsBefore(now)}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := tx.query(ctx, `SELECT started_at FROM cycles WHERE started_at < ? AND conversation_id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return wrap("changed cycles", err)
	}
	var times []int64
	for rows.Next() {
		var t int64
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return wrap("scan changed cycle", err)
		}
		times = append(times, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap("changed cycles", err)
	}
	return tx.bumpRollups(ctx, now, kinds, times...)
}
