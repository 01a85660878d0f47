package webform

import (
	"math"
	"sync"
	"time"
)

// maxBuckets caps the limiter's memory. Past it, buckets are evicted at
// random: an evicted client gets a fresh burst, which fails open for that
// one client rather than closed for everyone.
const maxBuckets = 100_000

// limiter is a token bucket per key: burst tokens, one more every interval.
type limiter struct {
	interval time.Duration
	burst    float64

	mu        sync.Mutex
	buckets   map[string]bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(interval time.Duration, burst int) *limiter {
	return &limiter{interval: interval, burst: float64(burst), buckets: map[string]bucket{}}
}

// allow takes a token from key's bucket. When there is none it returns
// false and how long until there will be one.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)

	b, ok := l.buckets[key]
	if !ok {
		b = bucket{tokens: l.burst, at: now}
	} else if elapsed := now.Sub(b.at); elapsed > 0 {
		// A clock that steps back refills nothing rather than going negative.
		b.tokens = math.Min(l.burst, b.tokens+float64(elapsed)/float64(l.interval))
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		l.buckets[key] = b
		return true, 0
	}
	l.buckets[key] = b
	return false, time.Duration((1 - b.tokens) * float64(l.interval))
}

// sweep forgets buckets that have refilled completely (they are the same as
// no bucket at all), at most once per full refill period unless the map is
// at its cap.
func (l *limiter) sweep(now time.Time) {
	full := time.Duration(l.burst * float64(l.interval))
	if len(l.buckets) < maxBuckets && now.Sub(l.lastSweep) < full {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.at) >= time.Duration((l.burst-b.tokens)*float64(l.interval)) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxBuckets {
			break
		}
		delete(l.buckets, k)
	}
}
