package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/meta/webhook"
	"github.com/switchboard-inbox/switchboard/channel/whatsapp"
	"github.com/switchboard-inbox/switchboard/queue"
)

const secret = "test_app_secret"

// body is the documented WhatsApp text webhook (channels.md §9).
const body = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]},"field":"messages"}]}]}`

// BenchmarkVerifyAndParse is the handler's own work on the documented
// payload: the signature over the raw bytes and the parse.
func BenchmarkVerifyAndParse(b *testing.B) {
	raw := []byte(body)
	sig := meta.Sign(secret, raw)
	now := time.Now()
	for b.Loop() {
		if !meta.ValidSignature(secret, raw, sig) {
			b.Fatal("signature")
		}
		evs, err := whatsapp.Parse(raw, now)
		if err != nil || len(evs.Messages) != 1 {
			b.Fatal(err)
		}
		_ = evs.Messages[0].Inbound()
	}
}

// BenchmarkWebhook is a whole WhatsApp webhook made durable on each
// queue, from parallel callers.
func BenchmarkWebhook(b *testing.B) {
	for _, backend := range []string{"sqlite", "redis"} {
		b.Run(backend, func(b *testing.B) {
			var q switchboard.Queue
			if backend == "sqlite" {
				sq, err := queue.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "q.db"))
				if err != nil {
					b.Fatal(err)
				}
				q = sq
			} else {
				u := os.Getenv("SWITCHBOARD_TEST_REDIS_URL")
				if u == "" {
					b.Skip("SWITCHBOARD_TEST_REDIS_URL is not set")
				}
				opts, err := redis.ParseURL(u)
				if err != nil {
					b.Fatal(err)
				}
				rdb := redis.NewClient(opts)
				defer rdb.Close()
				prefix := "sbbench-meta:" + time.Now().Format("150405.000000") + ":"
				defer rdb.Del(context.Background(), prefix+string(switchboard.ChannelWhatsApp))
				q = queue.NewRedis(rdb, queue.RedisOptions{Prefix: prefix})
			}
			defer q.Close()
			h := webhook.New(webhook.Config{AppSecret: secret, VerifyToken: "v", Queue: q, Clock: switchboard.SystemClock{}})
			sig := meta.Sign(secret, []byte(body))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest(http.MethodPost, "/webhooks/meta", strings.NewReader(body))
					r.Header.Set(meta.SignatureHeader, sig)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Errorf("status %d: %s", w.Code, w.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "webhooks/s")
		})
	}
}
