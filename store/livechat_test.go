package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// TestFirstResponseP50: the median first response of live chats created
// in the window is exact (the mean of the two middle values for an even
// count), leaving out other channels, older conversations and ones not
// answered yet.
func TestFirstResponseP50(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		agent := mustAgent(t, db, "sue")
		n := 0
		answered := func(ch switchboard.Channel, after time.Duration) {
			t.Helper()
			n++
			kind := switchboard.IdentityRef{Kind: switchboard.IdentityChatVisitor, Value: fmt.Sprint("v", n)}
			if ch == switchboard.ChannelEmail {
				kind = switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: fmt.Sprintf("c%d@example.com", n)}
			}
			r := mustIngest(t, db, inbound(ch, fmt.Sprint("p", n), "hi", kind))[0]
			clock.Advance(after)
			if after > 0 {
				if _, err := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: agent.ID, Text: "hello"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		p50 := func() (time.Duration, int) {
			t.Helper()
			d, count, err := db.FirstResponseP50(ctx, switchboard.ChannelLivechat, clock.Now().Add(-7*24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return d, count
		}
		if d, c := p50(); d != 0 || c != 0 {
			t.Fatalf("no data: %v over %d, want 0", d, c)
		}
		answered(switchboard.ChannelLivechat, 2*time.Second) // out of the window soon
		clock.Advance(8 * 24 * time.Hour)
		answered(switchboard.ChannelEmail, time.Hour)
		for _, d := range []time.Duration{30 * time.Second, 10 * time.Second, 90 * time.Second, 20 * time.Second} {
			answered(switchboard.ChannelLivechat, d)
		}
		answered(switchboard.ChannelLivechat, 0) // waiting
		if d, c := p50(); d != 25*time.Second || c != 4 {
			t.Fatalf("p50 %v over %d, want 25s over 4", d, c)
		}
		answered(switchboard.ChannelLivechat, 5*time.Second)
		if d, c := p50(); d != 20*time.Second || c != 5 {
			t.Fatalf("p50 %v over %d, want 20s over 5", d, c)
		}
	})
}
