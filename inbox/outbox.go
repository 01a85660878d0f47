package inbox

import (
	"context"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// ClaimOutbox takes up to n replies due for sending for this worker until
// lease has passed; rows another worker holds are skipped.
func (s *Service) ClaimOutbox(ctx context.Context, n int, lease time.Duration) ([]switchboard.OutboxItem, error) {
	return s.store.ClaimOutbox(ctx, n, lease)
}

// CompleteOutbox records a reply the provider accepted as providerID.
func (s *Service) CompleteOutbox(ctx context.Context, it switchboard.OutboxItem, providerID string) error {
	if err := s.store.CompleteOutbox(ctx, it.ID, providerID); err != nil {
		return err
	}
	s.announceMessages(ctx, switchboard.BusMessageUpdated, "", it.Message.MessageID)
	return nil
}

// FailOutbox records a failed attempt to send a reply: with retryAt set
// it is tried again then, otherwise the reply failed for good with cause.
func (s *Service) FailOutbox(ctx context.Context, it switchboard.OutboxItem, cause string, retryAt time.Time) error {
	if err := s.store.FailOutbox(ctx, it.ID, cause, retryAt); err != nil {
		return err
	}
	if retryAt.IsZero() {
		s.announceMessages(ctx, switchboard.BusMessageUpdated, "", it.Message.MessageID)
	}
	return nil
}
