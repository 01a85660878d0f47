// Package testenv finds the servers backend tests run against. A test whose
// server is not configured fails in CI (CI=true) and is skipped elsewhere,
// saying why, so that a missing server can never pass silently in CI.
package testenv

import (
	"os"
	"sync"
	"testing"
	"time"
)

// URL returns the value of the environment variable name, or ends the test:
// with a failure in CI, with a skip elsewhere.
func URL(tb testing.TB, name, what string) string {
	tb.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not set: CI must run the %s tests against a real server (see .ci/run)", name, what)
	}
	tb.Skipf("%s is not set; skipping the %s tests (set it to run them, as .ci/run does)", name, what)
	return ""
}

// Names of the variables the test suites read.
const (
	PostgresURL = "SWITCHBOARD_TEST_DATABASE_URL"
	RedisURL    = "SWITCHBOARD_TEST_REDIS_URL"
	S3URL       = "SWITCHBOARD_TEST_S3_URL"
	// IMAPURL is imap://user:password@host:port of a mailbox on a real IMAP
	// server, SMTPURL smtp://host:port of a real SMTP listener whose mail
	// for that user arrives in that mailbox (.ci/mail.sh starts both).
	IMAPURL = "SWITCHBOARD_TEST_IMAP_URL"
	SMTPURL = "SWITCHBOARD_TEST_SMTP_URL"
)

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t.UTC()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
