package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

func TestRoutingConfigAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		var wakes atomic.Int32
		e.svc.OnRoutingChange(func(...string) { wakes.Add(1) })
		var errOut apiError
		if code := e.api("GET", "/api/v1/routing", e.agent, nil, &errOut); code != http.StatusForbidden {
			t.Errorf("agent reads routing: %d", code)
		}
		bad := map[string]any{"teams": map[string]any{"": map[string]any{"hours": map[string]any{"tz": "Mars/Olympus", "week": map[string]any{}}}}}
		if code := e.api("PUT", "/api/v1/routing", e.admin, bad, &errOut); code != http.StatusBadRequest || !strings.Contains(errOut.Error.Message, "Mars/Olympus") {
			t.Errorf("bad time zone: %d %+v", code, errOut)
		}
		// After-hours hand-offs that go round in a cycle are refused, whole.
		for _, tt := range []struct {
			teams map[string]any
			cycle string
		}{
			{map[string]any{
				"":  map[string]any{"after_hours": "team", "after_hours_team": "a"},
				"a": map[string]any{"after_hours": "team", "after_hours_team": "b"},
				"b": map[string]any{"after_hours": "team", "after_hours_team": "a"},
			}, "(a → b → a)"},
			{map[string]any{"": map[string]any{"after_hours": "team", "after_hours_team": "night"}, "night": map[string]any{"after_hours": "team", "after_hours_team": ""}}, ""},
			{map[string]any{"night": map[string]any{"after_hours": "team", "after_hours_team": "night"}}, "(night → night)"},
		} {
			errOut = apiError{}
			code := e.api("PUT", "/api/v1/routing", e.admin, map[string]any{"teams": tt.teams}, &errOut)
			if tt.cycle == "" {
				// Not a cycle, but invalid: night hands off to nobody.
				if code != http.StatusBadRequest || !strings.Contains(errOut.Error.Message, `team "night"`) {
					t.Errorf("team without an after-hours team: %d %+v", code, errOut)
				}
				continue
			}
			if code != http.StatusBadRequest || !strings.Contains(errOut.Error.Message, "after-hours hand-offs go round in a cycle "+tt.cycle) {
				t.Errorf("cycle %s: %d %+v", tt.cycle, code, errOut)
			}
		}
		if c, err := e.db.GetRoutingConfig(context.Background()); err != nil || len(c.Teams) != 0 {
			t.Errorf("after refused configurations: %+v, %v; want nothing stored", c, err)
		}
		cfg := map[string]any{
			"teams": map[string]any{
				"": map[string]any{
					"hours":            map[string]any{"tz": "Europe/Paris", "week": map[string]any{"mon": [][]string{{"09:00", "17:00"}}}, "holidays": []string{"2026-12-25"}},
					"after_hours":      "team",
					"after_hours_team": "night",
					"ack":              map[string]string{"sms": "We're closed; back at {next_open}."},
				},
				"night": map[string]any{},
			},
			"keywords": []map[string]any{{"topic": "billing", "keywords": []string{"refund", "invoice"}}},
		}
		var got struct {
			Teams    map[string]map[string]any `json:"teams"`
			Keywords []map[string]any          `json:"keywords"`
		}
		if code := e.api("PUT", "/api/v1/routing", e.admin, cfg, &got); code != http.StatusOK {
			t.Fatalf("put routing: %d", code)
		}
		if got.Teams[""]["after_hours_team"] != "night" || got.Teams[""]["hours"].(map[string]any)["tz"] != "Europe/Paris" || got.Keywords[0]["topic"] != "billing" {
			t.Errorf("routing answered back as %+v", got)
		}
		if wakes.Load() != 1 {
			t.Errorf("router woken %d times, want once", wakes.Load())
		}
		// The after-hours team exists now, so conversations can be handed to it.
		e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "hello"})
		var list struct{ Conversations []conv }
		e.api("GET", "/api/v1/conversations", e.admin, nil, &list)
		if err := e.db.SetTeam(context.Background(), list.Conversations[0].ID, "night", "", "business_hours", "closed"); err != nil {
			t.Errorf("hand-off to the configured after-hours team: %v", err)
		}
	})
}

func TestQueuePositionAndEmailReplies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "first"})
		e.postForm(map[string]string{"name": "Bo", "email": "bo@example.com", "message": "second"})
		var list struct{ Conversations []conv }
		e.api("GET", "/api/v1/conversations", e.admin, nil, &list)
		positions := map[string]float64{}
		for _, c := range list.Conversations {
			var full map[string]any
			e.api("GET", "/api/v1/conversations/"+c.ID, e.admin, nil, &full)
			p, _ := full["queue_position"].(float64)
			positions[c.ID] = p
		}
		older, newer := list.Conversations[1].ID, list.Conversations[0].ID
		if positions[older] != 1 || positions[newer] != 2 {
			t.Errorf("queue positions = %v, want the older conversation first", positions)
		}
		// A supervisor's priority puts the newer one first.
		if code := e.api("POST", "/api/v1/conversations/"+newer+"/priority", e.agent, map[string]any{"priority": 5}, nil); code != http.StatusForbidden {
			t.Errorf("agent sets priority: %d", code)
		}
		if code := e.api("POST", "/api/v1/conversations/"+newer+"/priority", e.admin, map[string]any{"priority": 500}, nil); code != http.StatusBadRequest {
			t.Errorf("priority out of range: %d", code)
		}
		if code := e.api("POST", "/api/v1/conversations/"+newer+"/priority", e.admin, map[string]any{"priority": 5}, nil); code != http.StatusOK {
			t.Errorf("set priority: %d", code)
		}
		var full map[string]any
		e.api("GET", "/api/v1/conversations/"+newer, e.admin, nil, &full)
		if full["queue_position"] != 1.0 {
			t.Errorf("prioritised conversation at %v, want 1", full["queue_position"])
		}
		e.api("POST", "/api/v1/conversations/"+older+"/assign", e.agent, map[string]any{"agent_id": e.agentID}, nil)
		full = nil
		e.api("GET", "/api/v1/conversations/"+older, e.admin, nil, &full)
		if _, ok := full["queue_position"]; ok {
			t.Errorf("an assigned conversation has a queue position: %v", full["queue_position"])
		}

		// Copies: e-mail-like channels only, valid addresses only, kept
		// for the sender.
		var errOut apiError
		if code := e.api("POST", "/api/v1/conversations/"+older+"/messages", e.agent, map[string]any{"text": "hi", "cc": []string{"not an address"}}, &errOut); code != http.StatusBadRequest {
			t.Errorf("bad cc: %d %+v", code, errOut)
		}
		var m struct{ ID string }
		if code := e.api("POST", "/api/v1/conversations/"+older+"/messages", e.agent, map[string]any{"text": "hi", "cc": []string{"boss@example.com"}, "bcc": []string{"audit@team.example"}}, &m); code != http.StatusAccepted {
			t.Fatalf("reply with cc: %d", code)
		}
		stored, _ := e.db.GetMessage(ctx, m.ID)
		if string(stored.Metadata) != `{"bcc":["audit@team.example"],"cc":["boss@example.com"]}` {
			t.Errorf("metadata = %s", stored.Metadata)
		}
		// Agent HTML is sanitised before it is stored or sent.
		if code := e.api("POST", "/api/v1/conversations/"+older+"/messages", e.agent, map[string]any{"text": "x", "html": `<p>ok</p><script>alert(1)</script><img src=x onerror=alert(2)>`}, &m); code != http.StatusAccepted {
			t.Fatal(code)
		}
		if stored, _ = e.db.GetMessage(ctx, m.ID); strings.Contains(stored.HTML, "script") || strings.Contains(stored.HTML, "onerror") || !strings.Contains(stored.HTML, "<p>ok</p>") {
			t.Errorf("stored html = %q", stored.HTML)
		}
	})
}

func TestInlineImagesPointAtAttachments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		in := switchboard.Inbound{Channel: switchboard.ChannelEmail, ProviderID: "m1@x", ContentType: "text", Text: "see logo",
			Identities:  []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: "ana@example.com"}},
			HTML:        `<p>see <img src="cid:logo@x" alt="logo"> and <img src="cid:missing@x"></p>`,
			Attachments: []switchboard.Attachment{{Key: "media/email/x/0-logo.png", ContentType: "image/png", Size: 3, Name: "logo.png", ContentID: "logo@x"}}}
		res, err := e.svc.Ingest(ctx, []switchboard.Inbound{in})
		if err != nil {
			t.Fatal(err)
		}
		var full struct {
			Messages []struct {
				HTML        string `json:"html"`
				Attachments []struct {
					URL string `json:"url"`
				} `json:"attachments"`
			} `json:"messages"`
		}
		e.api("GET", "/api/v1/conversations/"+res[0].ConversationID, e.admin, nil, &full)
		m := full.Messages[0]
		if len(m.Attachments) != 1 || m.Attachments[0].URL == "" {
			t.Fatalf("attachments = %+v", m.Attachments)
		}
		url := strings.ReplaceAll(m.Attachments[0].URL, "&", "&amp;")
		if !strings.Contains(m.HTML, `src="`+url+`"`) || strings.Contains(m.HTML, "cid:logo@x") {
			t.Errorf("html = %q, want the inline image at %s", m.HTML, url)
		}
	})
}
