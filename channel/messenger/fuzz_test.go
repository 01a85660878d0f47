package messenger

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
	f.Add([]byte(`{"object":"page","entry":[{"messaging":[{"sender":{"id":" "},"timestamp":"1","postback":{}}]}]}`))
	f.Add([]byte(`{"object":"instagram","entry":[{"standby":[{"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m","is_echo":true}}]}]}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
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
			if in.Channel != switchboard.ChannelMessenger && in.Channel != switchboard.ChannelInstagram {
				t.Fatalf("message %d: channel %q", i, in.Channel)
			}
			if in.ReceivedAt.IsZero() || !json.Valid(in.Metadata) || !json.Valid(in.Original) {
				t.Fatalf("message %d: received %v, metadata %q, original %q", i, in.ReceivedAt, in.Metadata, in.Original)
			}
			if _, err := json.Marshal(in); err != nil {
				t.Fatalf("message %d: Inbound does not encode: %v", i, err)
			}
		}
	})
}
