package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// BenchmarkIngest stores batches of 256 messages from 20,000 customers,
// the shape the ingest pipeline hands the store.
func BenchmarkIngest(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			db := storetest.Open(b, backend, switchboard.SystemClock{})
			ctx := context.Background()
			const batch = 256
			n := 0
			b.ResetTimer()
			for b.Loop() {
				items := make([]switchboard.Inbound, batch)
				for i := range items {
					n++
					items[i] = inbound(switchboard.ChannelWebform, fmt.Sprintf("bench-%d", n), fmt.Sprintf("bench message %d: where is my order?", n),
						email(fmt.Sprintf("c%d@bench.example", n%20000)))
				}
				if _, err := db.Ingest(ctx, items, store.IngestOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
