package inbox

import (
	"context"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Full-text queries are bounded: a 100,000-word query ran for 17 s,
// filled the read pool and, on PostgreSQL, overflowed its stack. Agents
// search with a few words.
const (
	MaxQueryBytes = 256
	MaxQueryTerms = 12
	// MaxSearches is how many full-text searches run at once; the rest of
	// the read pool stays for everything else.
	MaxSearches = 2
	// searchWait is how long a search waits for its turn before it is
	// refused as too many at once.
	searchWait = 5 * time.Second
)

// searchQuery checks a full-text query against the bounds.
func searchQuery(q string) (string, error) {
	q = strings.TrimSpace(q)
	switch {
	case len(q) > MaxQueryBytes:
		return "", switchboard.Errorf(switchboard.EINVALID, "the search is %d bytes long in UTF-8; at most %d are allowed", len(q), MaxQueryBytes)
	case len(strings.Fields(q)) > MaxQueryTerms:
		return "", switchboard.Errorf(switchboard.EINVALID, "the search has %d words; at most %d are allowed", len(strings.Fields(q)), MaxQueryTerms)
	}
	return q, nil
}

// searchSlot waits for a turn to run a full-text search and returns the
// function that gives it back.
func (s *Service) searchSlot(ctx context.Context) (func(), error) {
	t := time.NewTimer(searchWait)
	defer t.Stop()
	select {
	case s.searches <- struct{}{}:
		return func() { <-s.searches }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, switchboard.Errorf(switchboard.ERATELIMIT, "too many searches are running; try again in a moment")
	}
}
