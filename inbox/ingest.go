package inbox

import (
	"context"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
)

// Ingest threads a batch of inbound messages into their customers'
// conversations, their text normalised first (switchboard.Inbound.Normalize:
// the one place for every channel), (deduplicated by channel and provider id, in one
// transaction), then announces each stored message and each conversation
// it changed. Results are in the order of items.
func (s *Service) Ingest(ctx context.Context, items []switchboard.Inbound) ([]switchboard.IngestResult, error) {
	for i := range items {
		items[i].Normalize()
	}
	results, err := s.store.Ingest(ctx, items, store.IngestOptions{ReopenWindow: s.reopen})
	if err != nil {
		return nil, err
	}
	if s.bus == nil {
		return results, nil
	}
	var msgs, convs []string
	seen := map[string]bool{}
	for _, r := range results {
		if !r.Stored() {
			continue
		}
		msgs = append(msgs, r.MessageID)
		if !seen[r.ConversationID] {
			seen[r.ConversationID] = true
			convs = append(convs, r.ConversationID)
		}
	}
	evs, err := s.messageEvents(ctx, switchboard.BusMessageCreated, "", msgs...)
	if err == nil {
		var more []switchboard.BusEvent
		more, err = s.conversationEvents(ctx, "", convs...)
		evs = append(evs, more...)
	}
	s.announce(ctx, evs, err)
	return results, nil
}

// DeadLetter keeps an inbound entry that can never be processed (it does
// not decode, say) for an operator to inspect, so nothing is silently lost.
func (s *Service) DeadLetter(ctx context.Context, ch switchboard.Channel, payload []byte, cause string) error {
	return s.store.DeadLetter(ctx, ch, payload, cause)
}
