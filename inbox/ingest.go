package inbox

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
)

// Ingest threads a batch of inbound messages into their customers'
// conversations, their text normalised first (switchboard.Inbound.Normalize:
// the one place for every channel), deduplicated by channel and provider
// id, in one transaction. Results are in the order of items.
//
// Each stored message and each conversation it changed is announced once
// committed, by the announcer, in the order of the commits: the messages
// are announced as the store wrote them, the conversations are read back
// (what the API shows, whatever else changed them), a round trip that
// would otherwise hold up the caller's next batch.
func (s *Service) Ingest(ctx context.Context, items []switchboard.Inbound) ([]switchboard.IngestResult, error) {
	for i := range items {
		items[i].Normalize()
	}
	// Answers to satisfaction surveys are ratings, not messages.
	ratings, err := s.takeRatings(ctx, items)
	if err != nil {
		return nil, err
	}
	rest := items
	if len(ratings) > 0 {
		rest = make([]switchboard.Inbound, 0, len(items)-len(ratings))
		for i := range items {
			if _, ok := ratings[i]; !ok {
				rest = append(rest, items[i])
			}
		}
	}
	results, err := s.store.Ingest(ctx, rest, store.IngestOptions{ReopenWindow: s.reopen})
	if err != nil {
		return nil, err
	}
	if len(ratings) > 0 {
		all := make([]switchboard.IngestResult, len(items))
		j := 0
		for i := range items {
			if r, ok := ratings[i]; ok {
				all[i] = r
				continue
			}
			all[i] = results[j]
			j++
		}
		results = all
	}
	if s.bus == nil {
		return results, nil
	}
	// Announced in parts of at most maxAnnounce messages, whatever the
	// batch size.
	var jobs []ingested
	var job ingested
	seen := map[string]bool{}
	for _, r := range results {
		if !r.Stored() {
			continue
		}
		if len(job.msgs)+len(job.unread) == maxAnnounce {
			jobs, job, seen = append(jobs, job), ingested{}, map[string]bool{}
		}
		if r.Message != nil {
			job.msgs = append(job.msgs, *r.Message)
		} else {
			job.unread = append(job.unread, r.MessageID)
		}
		if !seen[r.ConversationID] {
			seen[r.ConversationID] = true
			job.convs = append(job.convs, r.ConversationID)
		}
	}
	if len(job.convs) > 0 {
		jobs = append(jobs, job)
	}
	// An Ingest that overlaps Close (which the caller should not let
	// happen) stores its batch and announces nothing.
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return results, nil
	}
	for _, job := range jobs {
		select {
		case s.ingested <- job:
		case <-ctx.Done():
			// Stored all the same; agents see it on their next fetch.
			s.log.Warn("inbox: ingested messages not announced", "messages", len(job.msgs)+len(job.unread), "err", ctx.Err())
			return results, nil
		}
	}
	return results, nil
}

// ingested is a committed batch to announce: the messages as stored,
// the ids of any the store did not return (read back), the conversations.
type ingested struct {
	msgs          []switchboard.Message
	unread, convs []string
}

// announceIngested runs until Close, announcing committed batches in
// order: message.created for each message, conversation.updated for each
// conversation, the reads for both made at once. Batches that wait are
// announced together, one read each for all of them, so the announcer
// keeps up however many ingest workers feed it.
func (s *Service) announceIngested() {
	defer close(s.announcerDone)
	for job := range s.ingested {
		seen := map[string]bool{}
		for _, c := range job.convs {
			seen[c] = true
		}
		// Take what else waits, up to about maxAnnounce messages (the last
		// part taken may pass it by less than a part).
	more:
		for len(job.msgs)+len(job.unread) < maxAnnounce {
			select {
			case next, ok := <-s.ingested:
				if !ok {
					break more
				}
				job.msgs = append(job.msgs, next.msgs...)
				job.unread = append(job.unread, next.unread...)
				for _, c := range next.convs {
					if !seen[c] {
						seen[c] = true
						job.convs = append(job.convs, c)
					}
				}
			default:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var msgEvs, convEvs []switchboard.BusEvent
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error {
			msgs := job.msgs
			if len(job.unread) > 0 {
				read, err := s.store.MessagesByID(gctx, job.unread)
				if err != nil {
					return err
				}
				msgs = append(msgs, read...)
			}
			var err error
			msgEvs, err = s.messageEventsOf(gctx, switchboard.BusMessageCreated, "", msgs)
			return err
		})
		g.Go(func() (err error) { convEvs, err = s.conversationEvents(gctx, "", job.convs...); return err })
		err := g.Wait()
		s.announce(ctx, append(msgEvs, convEvs...), err)
		cancel()
	}
}

// maxAnnounce bounds the messages announced together: with their
// conversations, a burst within the bus's subscriber buffers
// (bus.DefaultBuffer).
const maxAnnounce = 512

// DeadLetter keeps an inbound entry that can never be processed (it does
// not decode, say) for an operator to inspect, so nothing is silently lost.
func (s *Service) DeadLetter(ctx context.Context, ch switchboard.Channel, payload []byte, cause string) error {
	return s.store.DeadLetter(ctx, ch, payload, cause)
}
