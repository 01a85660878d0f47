package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/switchboard-inbox/switchboard"
)

// RoutingPlans returns how the database runs the routing's hot queries, by
// name: "active_counts" (every agent's load), "agent_active" (one agent's,
// inside each assignment), "queue_first", "queue_same_priority" and
// "queue_lower_priority" (pages of the queue). On SQLite it is EXPLAIN
// QUERY PLAN; on PostgreSQL EXPLAIN with sequential scans discouraged, so
// that the answer says whether an index can serve the query whatever the
// size of the table. Tests and benchmarks use it to check that the indexes
// are used.
func (db *DB) RoutingPlans(ctx context.Context) (map[string]string, error) {
	queries := []struct {
		name, q string
		args    []any
	}{
		{"active_counts", activeCountsQuery, nil},
		{"agent_active", agentActiveQuery(switchboard.ClassChat), append([]any{"agent"}, chatChannels...)},
		{"queue_first", waitingSelect + queueOrder, []any{500}},
		{"queue_same_priority", waitingSelect + queueSamePrio + queueOrder, []any{0, int64(0), "id", 500}},
		{"queue_lower_priority", waitingSelect + queueLowerPrio + queueOrder, []any{0, 500}},
		{"queue_head", queueHead, []any{100}},
		{"queue_class_first", waitingSelect + ` AND c.last_channel IN (` + placeholders(len(chatChannels)) + `)` + queueOrder, append(append([]any{}, chatChannels...), 500)},
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("store: routing plans: %w", err)
	}
	defer tx.Rollback()
	explain := "EXPLAIN QUERY PLAN "
	if db.dialect.plansBySize() {
		explain = "EXPLAIN "
		if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return nil, fmt.Errorf("store: routing plans: %w", err)
		}
	}
	out := make(map[string]string, len(queries))
	for _, q := range queries {
		rows, err := tx.QueryContext(ctx, explain+db.dialect.rebind(q.q), q.args...)
		if err != nil {
			return nil, fmt.Errorf("store: routing plan %s: %w", q.name, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			// SQLite: id, parent, notused, detail; PostgreSQL: one line.
			vals := make([]any, len(cols))
			var line string
			for i := range vals {
				vals[i] = new(any)
			}
			vals[len(vals)-1] = &line
			if err := rows.Scan(vals...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: routing plan %s: %w", q.name, err)
			}
			lines = append(lines, line)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: routing plan %s: %w", q.name, err)
		}
		out[q.name] = strings.Join(lines, "\n")
	}
	return out, nil
}
