package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Satisfaction surveys: due when a cycle has been resolved for the
// survey delay, claimed once, sent, answered once.

// Survey states.
const (
	SurveySending  = "sending"  // claimed; being sent
	SurveySent     = "sent"     // sent; waiting for the answer
	SurveyAnswered = "answered" // rated
	SurveySkipped  = "skipped"  // not sent: reason says why
)

// Survey is one satisfaction survey.
type Survey struct {
	ID             string
	CycleID        string
	ConversationID string
	CustomerID     string
	Channel        switchboard.Channel
	State          string
	Reason         string
	SentAt         time.Time
	Rating         int
}

const surveyColumns = `id, cycle_id, conversation_id, customer_id, channel, state, reason, sent_at, rating`

func scanSurvey(row interface{ Scan(...any) error }) (Survey, error) {
	var s Survey
	var sent, rating sql.NullInt64
	err := row.Scan(&s.ID, &s.CycleID, &s.ConversationID, &s.CustomerID, &s.Channel, &s.State, &s.Reason, &sent, &rating)
	s.SentAt, s.Rating = fromMicros(sent), int(rating.Int64)
	return s, err
}

// ClaimDueSurveys claims up to limit cycles resolved in [from, to) whose
// conversation is still resolved, which are its latest (a survey about a
// resolution the customer has since reopened would ask about the wrong
// thing) and which have no survey yet: each gets
// a survey in state sending, which this caller then sends. Another
// instance claiming at the same time gets other cycles.
func (db *DB) ClaimDueSurveys(ctx context.Context, from, to time.Time, limit int) ([]Survey, error) {
	var out []Survey
	err := db.inTx(ctx, func(tx *Tx) error {
		rows, err := tx.query(ctx, `SELECT c.id, c.conversation_id, v.customer_id FROM cycles c JOIN conversations v ON v.id = c.conversation_id
			WHERE c.resolved_at >= ? AND c.resolved_at < ? AND v.status = 'resolved'
			AND NOT EXISTS (SELECT 1 FROM surveys s WHERE s.cycle_id = c.id)
			AND NOT EXISTS (SELECT 1 FROM cycles n WHERE n.conversation_id = c.conversation_id AND n.started_at > c.started_at)
			ORDER BY c.resolved_at LIMIT ?`, micros(from), micros(to), limit)
		if err != nil {
			return err
		}
		var due []Survey
		for rows.Next() {
			var s Survey
			if err := rows.Scan(&s.CycleID, &s.ConversationID, &s.CustomerID); err != nil {
				rows.Close()
				return err
			}
			due = append(due, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		now := db.clock.Now()
		for _, s := range due {
			s.ID, s.State = newID(now), SurveySending
			res, err := tx.execResult(ctx, `INSERT INTO surveys (id, cycle_id, conversation_id, customer_id, state, created_at) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (cycle_id) DO NOTHING`, s.ID, s.CycleID, s.ConversationID, s.CustomerID, s.State, micros(now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				out = append(out, s)
			}
		}
		return nil
	})
	return out, wrap("claim surveys", err)
}

// MarkSurvey records a claimed survey's outcome: sent on ch, or skipped
// for reason.
func (db *DB) MarkSurvey(ctx context.Context, id, state string, ch switchboard.Channel, reason string) error {
	var sent any
	if state == SurveySent {
		sent = micros(db.clock.Now())
	}
	return wrap("mark survey", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `UPDATE surveys SET state = ?, channel = ?, reason = ?, sent_at = ? WHERE id = ?`, state, ch, reason, sent, id)
	}))
}

// GetSurvey returns a survey.
func (db *DB) GetSurvey(ctx context.Context, id string) (Survey, error) {
	s, err := scanSurvey(db.queryRow(ctx, `SELECT `+surveyColumns+` FROM surveys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, switchboard.Errorf(switchboard.ENOTFOUND, "no such survey")
	}
	return s, wrap("get survey", err)
}

// OpenSurveyFor returns the latest survey sent to the customer behind id
// since since and not answered yet, if any.
func (db *DB) OpenSurveyFor(ctx context.Context, id switchboard.IdentityRef, since time.Time) (Survey, bool, error) {
	s, err := scanSurvey(db.queryRow(ctx, `SELECT `+surveyColumns+` FROM surveys WHERE customer_id = (SELECT customer_id FROM identities WHERE kind = ? AND value = ?)
		AND state = ? AND sent_at >= ? ORDER BY sent_at DESC LIMIT 1`, id.Kind, id.Value, SurveySent, micros(since)))
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, wrap("open survey", err)
}

// AnsweredBy reports whether the message (channel, provider id) already
// answered a survey: a provider's retry of it.
func (db *DB) AnsweredBy(ctx context.Context, ch switchboard.Channel, providerID string) (bool, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM surveys WHERE answer_channel = ? AND answer_provider_id = ?`, ch, providerID).Scan(&n)
	return n > 0, wrap("survey answered by", err)
}

// AnswerSurvey records rating for a sent survey, once; the message that
// carried it (ch, providerID) is kept to recognise retries ("" for a
// link). It reports whether this answer was recorded.
func (db *DB) AnswerSurvey(ctx context.Context, id string, rating int, ch switchboard.Channel, providerID string) (bool, error) {
	var n int64
	err := db.inTx(ctx, func(tx *Tx) error {
		var provider any
		if providerID != "" {
			provider = providerID
		}
		res, err := tx.execResult(ctx, `UPDATE surveys SET state = ?, rating = ?, answered_at = ?, answer_channel = ?, answer_provider_id = ?
			WHERE id = ? AND state = ?`, SurveyAnswered, rating, micros(db.clock.Now()), ch, provider, id, SurveySent)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, wrap("answer survey", err)
}

// EachSurveySent calls fn with the channel, state and rating of each
// survey sent in [from, to).
func (db *DB) EachSurveySent(ctx context.Context, from, to time.Time, fn func(ch switchboard.Channel, state string, rating int)) error {
	rows, err := db.query(ctx, `SELECT channel, state, rating FROM surveys WHERE sent_at >= ? AND sent_at < ?`, micros(from), micros(to))
	if err != nil {
		return wrap("surveys", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ch switchboard.Channel
		var state string
		var rating sql.NullInt64
		if err := rows.Scan(&ch, &state, &rating); err != nil {
			return wrap("scan survey", err)
		}
		fn(ch, state, int(rating.Int64))
	}
	return wrap("surveys", rows.Err())
}

// LastInboundChannel returns the channel of the conversation's latest
// customer message, and the identity it came from.
func (db *DB) LastInboundChannel(ctx context.Context, conversationID string) (switchboard.Channel, error) {
	var ch switchboard.Channel
	err := db.queryRow(ctx, `SELECT channel FROM messages WHERE conversation_id = ? AND direction = 'in' ORDER BY created_at DESC, id DESC LIMIT 1`, conversationID).Scan(&ch)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return ch, wrap("last inbound channel", err)
}
