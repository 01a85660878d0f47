package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// ClaimAck reserves the after-hours acknowledgement of a conversation for
// the closed period named period (e.g. the time it opens). One is due
// only for an open (not pending or snoozed), waiting conversation with an
// inbound message newer than the one the last acknowledgement answered,
// and at most one per closed period: a message in a period already
// acknowledged is marked answered without another. Exactly one caller
// gets Send, across workers and restarts; it sends and then calls
// RecordAck, or ReleaseAck when sending failed.
func (db *DB) ClaimAck(ctx context.Context, conversationID, period string) (route.AckClaim, error) {
	c := route.AckClaim{ConversationID: conversationID, Period: period}
	err := db.inTx(ctx, func(tx *Tx) error {
		c.Send = false
		var status switchboard.Status
		var acked string
		var inbound sql.NullInt64
		var ackedAt int64
		err := tx.queryRow(ctx, `SELECT c.status, c.acked_period, c.acked_inbound_at, c.last_inbound_at FROM conversations c WHERE c.id = ? AND `+waitingWhere+db.dialect.lockRow(),
			conversationID).Scan(&status, &acked, &ackedAt, &inbound)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // assigned, resolved, held or gone
		}
		if err != nil {
			return err
		}
		if status != switchboard.StatusOpen || !inbound.Valid || inbound.Int64 <= ackedAt {
			return nil
		}
		c.PrevPeriod, c.PrevInbound, c.Inbound = acked, ackedAt, inbound.Int64
		if err := tx.exec(ctx, `UPDATE conversations SET acked_period = ?, acked_inbound_at = ? WHERE id = ?`, period, inbound.Int64, conversationID); err != nil {
			return err
		}
		c.Send = acked != period
		return nil
	})
	if err != nil {
		return route.AckClaim{}, wrap("claim ack", err)
	}
	return c, nil
}

// RecordAck writes the auto_ack event of a claim: sent, or skipped (not
// "") with the reason, when the channel could not carry it; a skipped one
// keeps its claim, so it is not tried again for the same message.
func (db *DB) RecordAck(ctx context.Context, c route.AckClaim, ch switchboard.Channel, text, skipped string) error {
	data := map[string]any{"period": c.Period, "channel": ch, "text": text, "sent": skipped == ""}
	if skipped != "" {
		data["reason"] = skipped
	}
	return wrap("record ack", db.inTx(ctx, func(tx *Tx) error {
		return tx.addEvent(ctx, c.ConversationID, switchboard.EventAutoAck, "", data, db.clock.Now())
	}))
}

// ReleaseAck gives back a claim whose acknowledgement could not be sent,
// so a later pass tries again.
func (db *DB) ReleaseAck(ctx context.Context, c route.AckClaim) error {
	return wrap("release ack", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `UPDATE conversations SET acked_period = ?, acked_inbound_at = ? WHERE id = ? AND acked_period = ? AND acked_inbound_at = ?`,
			c.PrevPeriod, c.PrevInbound, c.ConversationID, c.Period, c.Inbound)
	}))
}
