package inbox_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// TestChannelSettings: on both databases, settings are admins' only;
// secrets are sealed at rest, never shown, kept when left blank and
// cleared only when asked; settings the environment gives are refused;
// the check refuses a bad whole before anything is stored; every change
// is in the audit log without a secret; another key does not open them.
func TestChannelSettings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		key := bytes.Repeat([]byte("k"), 32)
		svc := inboxtest.Open(t, backend, inbox.Config{SecretsKey: key, Clock: testenv.NewClock(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))})
		var changed int
		svc.SetSettingsHooks(inbox.SettingsHooks{
			Env: map[string]bool{"VOICE_GREETING": true},
			Check: func(stored map[string]string) error {
				if (stored["TWILIO_ACCOUNT_SID"] == "") != (stored["TWILIO_AUTH_TOKEN"] == "") {
					return errors.New("set both or neither")
				}
				return nil
			},
			Changed: func() { changed++ },
		})
		admin := switchboard.Actor{ID: "a1", Name: "Ada", Role: switchboard.RoleAdmin}
		agent := switchboard.Actor{ID: "a2", Name: "Al", Role: switchboard.RoleAgent}
		const token = "tok-0123456789abcdef"

		if _, err := svc.PutSettings(ctx, agent, inbox.SettingsChange{Set: map[string]string{"TWILIO_FROM": "+14155550100"}}); switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
			t.Fatalf("an agent changing settings: %v, want forbidden", err)
		}
		if _, err := svc.SettingsViews(ctx, agent); switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
			t.Fatalf("an agent reading settings: %v, want forbidden", err)
		}
		if _, err := svc.PutSettings(ctx, admin, inbox.SettingsChange{Set: map[string]string{"VOICE_GREETING": "Hi"}}); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Fatalf("changing a setting the environment gives: %v, want invalid", err)
		}
		if _, err := svc.PutSettings(ctx, admin, inbox.SettingsChange{Set: map[string]string{"NOT_A_SETTING": "x"}}); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Fatalf("an unknown setting: %v, want invalid", err)
		}
		if _, err := svc.PutSettings(ctx, admin, inbox.SettingsChange{Set: map[string]string{"TWILIO_ACCOUNT_SID": "AC1"}}); err == nil || !strings.Contains(err.Error(), "set both or neither") {
			t.Fatalf("a change the check refuses: %v", err)
		}
		if stored, _ := svc.StoredSettings(ctx); len(stored) != 0 || changed != 0 {
			t.Fatalf("a refused change left %v stored, %d applied", stored, changed)
		}

		got, err := svc.PutSettings(ctx, admin, inbox.SettingsChange{Set: map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": token, "TWILIO_FROM": "+14155550100"}})
		if err != nil || len(got) != 3 || changed != 1 {
			t.Fatalf("set: %v %v, applied %d times", got, err, changed)
		}
		stored, err := svc.StoredSettings(ctx)
		if err != nil || stored["TWILIO_AUTH_TOKEN"] != token || stored["TWILIO_ACCOUNT_SID"] != "AC1" {
			t.Fatalf("stored settings %v %v", stored, err)
		}
		raw, err := svc.Store(t).Settings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range raw {
			if strings.Contains(r.Value, token) || (r.Name == "TWILIO_AUTH_TOKEN" && (!r.Secret || !strings.HasPrefix(r.Value, "v1:"))) {
				t.Errorf("%s stored as %q (secret %v)", r.Name, r.Value, r.Secret)
			}
		}
		views, err := svc.SettingsViews(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			switch v.Name {
			case "TWILIO_AUTH_TOKEN":
				if !v.Set || v.Value != "" || v.UpdatedBy != "a1" {
					t.Errorf("token view %+v: want set, no value, by a1", v)
				}
			case "TWILIO_FROM":
				if v.Value != "+14155550100" {
					t.Errorf("number view %+v", v)
				}
			case "VOICE_GREETING":
				if !v.FromEnv || !v.Set {
					t.Errorf("greeting view %+v: want fixed by the environment", v)
				}
			}
		}

		// A blank secret keeps it; the same values change nothing.
		if got, err := svc.PutSettings(ctx, admin, inbox.SettingsChange{Set: map[string]string{"TWILIO_AUTH_TOKEN": "", "TWILIO_FROM": "+14155550100"}}); err != nil || len(got) != 0 || changed != 1 {
			t.Fatalf("blank token: %v %v, applied %d", got, err, changed)
		}
		// Clearing the token alone leaves the SID: the check refuses.
		if _, err := svc.PutSettings(ctx, admin, inbox.SettingsChange{Clear: []string{"TWILIO_AUTH_TOKEN"}}); err == nil {
			t.Fatal("clearing the token alone was accepted")
		}
		if _, err := svc.PutSettings(ctx, admin, inbox.SettingsChange{Set: map[string]string{"TWILIO_ACCOUNT_SID": ""}, Clear: []string{"TWILIO_AUTH_TOKEN"}}); err != nil {
			t.Fatal(err)
		}
		if stored, _ := svc.StoredSettings(ctx); stored["TWILIO_AUTH_TOKEN"] != "" || stored["TWILIO_ACCOUNT_SID"] != "" || stored["TWILIO_FROM"] == "" {
			t.Fatalf("after clearing: %v", stored)
		}

		log, err := svc.AuditLog(ctx, admin, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, e := range log {
			lines = append(lines, e.Actor+" "+e.Action+" "+e.Target+" "+e.Detail)
			if strings.Contains(e.Detail, token) {
				t.Errorf("the audit log holds the token: %+v", e)
			}
		}
		want := []string{
			"Ada setting.clear TWILIO_AUTH_TOKEN cleared",
			"Ada setting.clear TWILIO_ACCOUNT_SID cleared",
			"Ada setting.set TWILIO_FROM set to +14155550100",
			"Ada setting.set TWILIO_AUTH_TOKEN set",
			"Ada setting.set TWILIO_ACCOUNT_SID set to AC1",
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit log, newest first:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		if _, err := svc.AuditLog(ctx, agent, "", 10); switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
			t.Errorf("an agent reading the audit log: %v", err)
		}

		// Another key opens nothing.
		if _, err := svc.PutSettings(ctx, admin, inbox.SettingsChange{Set: map[string]string{"META_APP_SECRET": "s3cret-value"}}); err != nil {
			t.Fatal(err)
		}
		again, err := inbox.Open(ctx, inbox.Config{DatabaseURL: svc.URL, SecretsKey: bytes.Repeat([]byte("x"), 32)})
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		if stored, err := again.StoredSettings(ctx); err == nil || stored["META_APP_SECRET"] != "" || stored["TWILIO_FROM"] == "" {
			t.Errorf("with another key: %v %v, want the secret left out with an error and the rest read", stored, err)
		}
	})
}
