package sms_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/queue"
)

const (
	benchToken = "test_auth_token_0123456789abcdef"
	benchBase  = "https://switchboard.example.com"
)

func benchForm(sid string) url.Values {
	return url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {"AC00000000000000000000000000000000"},
		"From": {"+14155550123"}, "To": {"+14155550100"}, "Body": {"Hi, my order #1042 arrived damaged"},
		"NumMedia": {"0"}, "NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"},
		"FromCity": {"SAN FRANCISCO"}, "FromState": {"CA"}, "FromCountry": {"US"}, "FromZip": {"94107"},
	}
}

// BenchmarkVerifyAndParse is the handler's own work: the signature and
// the form.
func BenchmarkVerifyAndParse(b *testing.B) {
	form := benchForm("SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a")
	u := benchBase + "/webhooks/twilio/sms"
	sig := twilio.Sign(benchToken, u, form)
	now := time.Now()
	for b.Loop() {
		if !twilio.ValidateSignature(benchToken, u, form, sig) {
			b.Fatal("signature")
		}
		if _, err := sms.ParseInbound(form, "US", now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInboundHandler is a whole webhook: verify, parse, and make the
// message durable on the queue, from parallel callers.
func BenchmarkInboundHandler(b *testing.B) {
	queues := map[string]func(b *testing.B) switchboard.Queue{
		"sqlite": func(b *testing.B) switchboard.Queue {
			q, err := queue.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "q.db"))
			if err != nil {
				b.Fatal(err)
			}
			return q
		},
		"redis": func(b *testing.B) switchboard.Queue {
			u := os.Getenv("SWITCHBOARD_TEST_REDIS_URL")
			if u == "" {
				b.Skip("SWITCHBOARD_TEST_REDIS_URL is not set")
			}
			opts, err := redis.ParseURL(u)
			if err != nil {
				b.Fatal(err)
			}
			rdb := redis.NewClient(opts)
			b.Cleanup(func() { rdb.Close() })
			prefix := "sbbench:" + time.Now().Format("150405.000000") + ":"
			b.Cleanup(func() {
				for _, ch := range switchboard.Channels {
					rdb.Del(context.Background(), prefix+string(ch))
				}
			})
			return queue.NewRedis(rdb, queue.RedisOptions{Prefix: prefix})
		},
	}
	for _, name := range []string{"sqlite", "redis"} {
		b.Run(name, func(b *testing.B) {
			q := queues[name](b)
			defer q.Close()
			h := sms.New(sms.Config{AuthToken: benchToken, PublicURL: benchBase, Queue: q, DefaultRegion: "US"}).InboundHandler()
			form := benchForm("SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a")
			body := form.Encode()
			sig := twilio.Sign(benchToken, benchBase+"/webhooks/twilio/sms", form)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest(http.MethodPost, "/webhooks/twilio/sms", strings.NewReader(body))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r.Header.Set(twilio.SignatureHeader, sig)
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
