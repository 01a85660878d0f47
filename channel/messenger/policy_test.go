package messenger

import (
	"strings"
	"testing"
	"time"
)

func TestSendMode(t *testing.T) {
	last := time.Date(2025, 6, 8, 20, 59, 43, 0, time.UTC)
	tests := []struct {
		name   string
		last   time.Time
		now    time.Time
		mode   string
		reason string
		tag    Tag
	}{
		{"just now", last, last, ModeResponse, "Within 24 hours", ""},
		{"23h59m", last, last.Add(24*time.Hour - time.Minute), ModeResponse, "Within 24 hours", ""},
		{"exactly 24 h", last, last.Add(24 * time.Hour), ModeHumanAgent, "HUMAN_AGENT tag", TagHumanAgent},
		{"three days", last, last.Add(72 * time.Hour), ModeHumanAgent, "up to 7 days", TagHumanAgent},
		{"just under 7 days", last, last.Add(7*24*time.Hour - time.Second), ModeHumanAgent, "HUMAN_AGENT", TagHumanAgent},
		{"exactly 7 days", last, last.Add(7 * 24 * time.Hour), "", "More than 7 days", ""},
		{"a month", last, last.Add(30 * 24 * time.Hour), "", "until the customer writes again", ""},
		{"never wrote", time.Time{}, last, "", "has not messaged", ""},
		{"clock skew", last.Add(time.Hour), last, ModeResponse, "Within 24 hours", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, reason := SendMode(tt.last, tt.now)
			if mode != tt.mode || !strings.Contains(reason, tt.reason) {
				t.Fatalf("SendMode = %q, %q; want %q and a reason containing %q", mode, reason, tt.mode, tt.reason)
			}
			if TagFor(mode) != tt.tag {
				t.Fatalf("TagFor(%q) = %q, want %q", mode, TagFor(mode), tt.tag)
			}
		})
	}
}

func TestMaxTextLen(t *testing.T) {
	if MaxTextLen("messenger") != 2000 || MaxTextLen("instagram") != 1000 || MaxTextLen("") != 2000 {
		t.Fatal("wrong text limits")
	}
}
