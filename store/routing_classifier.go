package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// ResolvedTopics returns up to limit of the most recently resolved
// conversations that have a topic, with their inbound text, for training
// the topic classifier. Topics the classifier guessed are left out: trained
// on, its mistakes would come back as facts.
func (db *DB) ResolvedTopics(ctx context.Context, limit int) ([]route.Labeled, error) {
	if limit <= 0 {
		limit = 10000
	}
	rows, err := db.query(ctx, `SELECT id, topic FROM conversations WHERE status = 'resolved' AND topic <> '' AND topic_source <> ? ORDER BY resolved_at DESC, id DESC LIMIT ?`, route.TopicByClassifier, limit)
	if err != nil {
		return nil, fmt.Errorf("store: resolved topics: %w", err)
	}
	var ws []route.Waiting
	for rows.Next() {
		var w route.Waiting
		if err := rows.Scan(&w.ID, &w.Topic); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: scan resolved topic: %w", err)
		}
		ws = append(ws, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: resolved topics: %w", err)
	}
	out := make([]route.Labeled, 0, len(ws))
	const chunk = 500
	for start := 0; start < len(ws); start += chunk {
		part := ws[start:min(start+chunk, len(ws))]
		topics := make([]string, len(part))
		for i := range part {
			topics[i], part[i].Topic = part[i].Topic, "" // FillWaiting reads text where the topic is unknown
		}
		if err := db.FillWaiting(ctx, part, time.Time{}); err != nil {
			return nil, err
		}
		for i, w := range part {
			if strings.TrimSpace(w.Text) != "" {
				out = append(out, route.Labeled{Text: w.Text, Topic: topics[i]})
			}
		}
	}
	return out, nil
}

// SaveClassifier stores a trained classifier; the newest is the one used.
// Older ones beyond the last few are removed.
func (db *DB) SaveClassifier(ctx context.Context, model []byte, accuracy float64, n int) (string, error) {
	now := db.clock.Now()
	id := newID(now)
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := tx.exec(ctx, `INSERT INTO classifiers (id, model, accuracy, n, created_at) VALUES (?, ?, ?, ?, ?)`, id, model, accuracy, n, micros(now)); err != nil {
			return err
		}
		return tx.exec(ctx, `DELETE FROM classifiers WHERE id NOT IN (SELECT id FROM classifiers ORDER BY created_at DESC, id DESC LIMIT 5)`)
	})
	return id, wrap("save classifier", err)
}

// LatestClassifierID returns the id of the newest classifier, "" if none:
// a cheap check for whether to load it again.
func (db *DB) LatestClassifierID(ctx context.Context) (string, error) {
	var id string
	err := db.queryRow(ctx, `SELECT id FROM classifiers ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, wrap("latest classifier", err)
}

// LoadClassifier returns the newest classifier, or ENOTFOUND.
func (db *DB) LoadClassifier(ctx context.Context) (route.StoredModel, error) {
	var m route.StoredModel
	var created sql.NullInt64
	err := db.queryRow(ctx, `SELECT id, model, accuracy, n, created_at FROM classifiers ORDER BY created_at DESC, id DESC LIMIT 1`).
		Scan(&m.ID, &m.Model, &m.Accuracy, &m.N, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return m, switchboard.Errorf(switchboard.ENOTFOUND, "no classifier has been trained")
	}
	m.CreatedAt = fromMicros(created)
	return m, wrap("load classifier", err)
}
