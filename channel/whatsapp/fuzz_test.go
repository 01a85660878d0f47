package whatsapp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(wrap(`{"messages":[{"from":"16505551234","id":"wamid.A","timestamp":1,"type":"location","location":{"latitude":"1e999","longitude":0}}]}`))
	f.Add(wrap(`{"contacts":[{"user_id":" "}],"messages":[{"id":"x","timestamp":"1","type":""}]}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body, testNow)
		if err != nil {
			if code := switchboard.ErrorCode(err); code != switchboard.EINVALID {
				t.Fatalf("error code %q for %v", code, err)
			}
			return
		}
		for i, m := range ev.Messages {
			in := m.Inbound()
			if err := in.Validate(); err != nil {
				t.Fatalf("message %d: Inbound does not validate: %v", i, err)
			}
			if in.Channel != switchboard.ChannelWhatsApp || in.ReceivedAt.After(testNow) || in.ReceivedAt.IsZero() {
				t.Fatalf("message %d: channel %q, received %v", i, in.Channel, in.ReceivedAt)
			}
			if !json.Valid(in.Metadata) || !json.Valid(in.Original) {
				t.Fatalf("message %d: metadata %q / original %q not JSON", i, in.Metadata, in.Original)
			}
			if _, err := json.Marshal(in); err != nil {
				t.Fatalf("message %d: Inbound does not encode: %v", i, err)
			}
		}
		for i, s := range ev.Statuses {
			if s.ID == "" || s.Status == "" || s.Timestamp.IsZero() {
				t.Fatalf("status %d incomplete: %+v", i, s)
			}
		}
	})
}
