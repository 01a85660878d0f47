package realtime

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

// fuzzInbox records what the agents' frames ask of the inbox.
type fuzzInbox struct{ calls []string }

func (f *fuzzInbox) Authenticate(context.Context, string) (switchboard.Actor, error) {
	return switchboard.Actor{ID: "a1", Name: "Ann", Role: switchboard.RoleAgent}, nil
}

func (f *fuzzInbox) SetViewing(_ context.Context, _ switchboard.Actor, id string, on bool) error {
	if id == "" {
		return switchboard.Errorf(switchboard.EINTERNAL, "SetViewing called with no conversation")
	}
	f.calls = append(f.calls, "viewing")
	return nil
}

func (f *fuzzInbox) Typing(_ context.Context, _ switchboard.Actor, id string) error {
	if id == "" {
		return switchboard.Errorf(switchboard.EINTERNAL, "Typing called with no conversation")
	}
	f.calls = append(f.calls, "typing")
	return nil
}

// FuzzAgentFrame: the agents' frame decoder (the read loop's decode and
// handle, docs/design.md §6.1) never panics, refuses anything but a
// viewing or typing frame with an EINVALID error with a message, and
// never asks the inbox about no conversation.
func FuzzAgentFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"viewing","conversation_id":"c1"}`, `{"type":"viewing","conversation_id":""}`, `{"type":"typing","conversation_id":"c1"}`,
		`{"type":"typing"}`, `{"type":"viewing"}`, `{"type":"dance"}`, `{"type":"typing","conversation_id":null}`, `{`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr inFrame
		if json.Unmarshal(b, &fr) != nil {
			return // answered "malformed JSON" by the read loop
		}
		in := &fuzzInbox{}
		s := &session{hub: &Hub{Inbox: in}, actor: switchboard.Actor{ID: "a1", Name: "Ann", Role: switchboard.RoleAgent}}
		err := s.handle(context.Background(), fr)
		if err != nil && (switchboard.ErrorCode(err) != switchboard.EINVALID || switchboard.ErrorMessage(err) == "") {
			t.Fatalf("%s: error %v, want EINVALID with a message", b, err)
		}
		if err == nil && fr.Type != "viewing" && fr.Type != "typing" {
			t.Fatalf("%s: frame type %q accepted", b, fr.Type)
		}
	})
}
