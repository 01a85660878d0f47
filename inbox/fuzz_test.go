package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email"
	"github.com/switchboard-inbox/switchboard/channel/messenger"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/webform"
	"github.com/switchboard-inbox/switchboard/channel/whatsapp"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/queue"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// FuzzChannelText feeds text with NUL, other C0 controls and invalid
// UTF-8 through every channel's real parser (SMS, WhatsApp, Messenger,
// Instagram, the web form, e-mail) onto the real queue and into the
// inbound path every channel shares, on SQLite and PostgreSQL: whatever a
// parser accepts is stored, none of it is dead-lettered for its text, and
// no NUL reaches a stored message.
func FuzzChannelText(f *testing.F) {
	for _, s := range []string{"hello", "nul\x00byte", "\x00", "bell\a esc\x1b[31m cr\r\n", "bad \xff\xfe utf-8", "emoji 😀\x00\x01", "\t\n\v\f"} {
		f.Add(s)
	}
	ctx := context.Background()
	var svcs []*inboxtest.DB
	for _, backend := range storetest.Backends {
		svcs = append(svcs, inboxtest.Open(f, backend, inbox.Config{}))
	}
	q, err := queue.OpenSQLite(ctx, filepath.Join(f.TempDir(), "queue.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { q.Close() })
	form := webform.New(webform.Config{Queue: q, RateLimit: webform.RateLimit{Disabled: true}})
	mail := email.New(email.Config{Queue: q, Store: svcs[0]})
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, text string) {
		i := n.Add(1)
		now := time.Now().UTC()
		var direct []switchboard.Inbound

		if in, err := sms.ParseInbound(url.Values{"MessageSid": {fmt.Sprintf("SM%032d", i)}, "From": {"+14155550100"}, "To": {"+14155550199"},
			"Body": {text}, "NumMedia": {"0"}, "AccountSid": {"AC00000000000000000000000000000000"}}, "US", now); err == nil {
			direct = append(direct, in)
		}
		js, _ := json.Marshal(text)
		wa := fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"1"},"contacts":[{"profile":{"name":"Fuzz"},"wa_id":"14155550101"}],"messages":[{"from":"14155550101","id":"wamid.F%d","timestamp":"%d","type":"text","text":{"body":%s}}]}}]}]}`,
			i, now.Unix(), js)
		if evs, err := whatsapp.Parse([]byte(wa), now); err == nil {
			for _, m := range evs.Messages {
				direct = append(direct, m.Inbound())
			}
		}
		for _, object := range []string{"page", "instagram"} {
			ms := fmt.Sprintf(`{"object":%q,"entry":[{"id":"1","time":%d,"messaging":[{"sender":{"id":"991"},"recipient":{"id":"1"},"timestamp":%d,"message":{"mid":"m.F%s%d","text":%s}}]}]}`,
				object, now.UnixMilli(), now.UnixMilli(), object, i, js)
			if evs, err := messenger.Parse([]byte(ms)); err == nil {
				for _, m := range evs.Messages {
					direct = append(direct, m.Inbound())
				}
			}
		}
		for _, in := range direct {
			b, _ := json.Marshal(in)
			if err := q.Enqueue(ctx, in.Channel, b); err != nil {
				t.Fatal(err)
			}
		}
		body, _ := json.Marshal(map[string]string{"name": "Fuzz " + text, "email": "fuzz@example.com", "subject": text, "message": text + " (form)"})
		req := httptest.NewRequest(http.MethodPost, "/forms/contact", strings.NewReader(string(body)))
		req.SetPathValue("form", "contact")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webform.IdempotencyHeader, fmt.Sprintf("fuzz-%d", i))
		form.ServeHTTP(httptest.NewRecorder(), req)
		raw := fmt.Sprintf("From: Fuzz <fuzz@example.com>\r\nTo: support@acme.test\r\nSubject: %s\r\nMessage-ID: <fuzz%d@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
			strings.NewReplacer("\r", "", "\n", "").Replace(text), i, text)
		mail.Accept(ctx, []byte(raw), "fuzz")

		ds, err := q.Receive(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		var items []switchboard.Inbound
		for _, d := range ds {
			var in switchboard.Inbound
			if err := json.Unmarshal(d.Payload, &in); err != nil {
				t.Fatalf("queue entry from %s: %v", d.Channel, err)
			}
			items = append(items, in)
		}
		if err := q.Ack(ctx, ds); err != nil {
			t.Fatal(err)
		}
		for _, svc := range svcs {
			batch := append([]switchboard.Inbound(nil), items...) // Ingest normalises in place
			res, err := svc.Ingest(ctx, batch)
			if err != nil {
				t.Fatalf("ingest: %v", err)
			}
			for j, r := range res {
				if r.Err != nil {
					t.Fatalf("%s message with text %q dead-lettered: %v", items[j].Channel, text, r.Err)
				}
				if r.Duplicate {
					continue
				}
				m, err := svc.Message(ctx, switchboard.System, r.MessageID)
				if err != nil {
					t.Fatal(err)
				}
				if strings.ContainsRune(m.Text, 0) || strings.ContainsRune(m.Sender, 0) {
					t.Fatalf("%s message stored with a NUL: %q", items[j].Channel, m.Text)
				}
			}
		}
	})
}
