package inbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

func TestPasswordHash(t *testing.T) {
	h, err := inbox.HashPassword("a good long password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "a good long password") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := inbox.HashPassword("a good long password")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if _, err := inbox.HashPassword("short"); switchboard.ErrorCode(err) != switchboard.EINVALID {
		t.Fatalf("a short password: %v", err)
	}
}

// TestSessions: a session lasts while used, ends unused after
// SessionIdle, and an agent's sessions end when an admin sets its
// password.
func TestSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		svc := inboxtest.Open(t, backend, inbox.Config{Clock: clock})
		a, _, err := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.Login(ctx, "sam@team.example", "any password at all", "192.0.2.1"); switchboard.ErrorCode(err) != switchboard.EUNAUTHORIZED {
			t.Fatalf("an agent without a password signed in: %v", err)
		}
		if err := svc.SetPassword(ctx, switchboard.System, a.ID, "the first password"); err != nil {
			t.Fatal(err)
		}
		token, sess, err := svc.Login(ctx, "sam@team.example", "the first password", "192.0.2.1")
		if err != nil || sess.Actor.ID != a.ID || sess.CSRF == "" {
			t.Fatalf("login: %+v %v", sess, err)
		}
		// Used every few days, it lives on.
		for i := 0; i < 4; i++ {
			clock.Advance(inbox.SessionIdle - time.Hour)
			got, err := svc.SessionActor(ctx, token)
			if err != nil || got.Actor.ID != a.ID || got.CSRF != sess.CSRF {
				t.Fatalf("session used after %d idle periods: %+v %v", i+1, got, err)
			}
		}
		clock.Advance(inbox.SessionIdle + time.Minute)
		if _, err := svc.SessionActor(ctx, token); switchboard.ErrorCode(err) != switchboard.EUNAUTHORIZED {
			t.Fatalf("an idle session: %v", err)
		}
		token, _, err = svc.Login(ctx, "sam@team.example", "the first password", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		// An agent may not set another's password; an admin may, and that
		// ends the agent's sessions.
		if err := svc.SetPassword(ctx, switchboard.Actor{ID: a.ID, Role: switchboard.RoleAgent}, a.ID, "another password"); switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
			t.Fatalf("an agent setting a password: %v", err)
		}
		if err := svc.SetPassword(ctx, switchboard.System, a.ID, "the second password"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.SessionActor(ctx, token); switchboard.ErrorCode(err) != switchboard.EUNAUTHORIZED {
			t.Fatalf("a session after the password was reset: %v", err)
		}
		if _, err := svc.SessionActor(ctx, "sbs_forged"); switchboard.ErrorCode(err) != switchboard.EUNAUTHORIZED {
			t.Fatalf("a forged session: %v", err)
		}
	})
}

// TestInvites: an admin's link creates the agent once, before it expires.
func TestInvites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		svc := inboxtest.Open(t, backend, inbox.Config{Clock: clock})
		admin, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Alex", Email: "alex@team.example", Role: switchboard.RoleAdmin})
		agent, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
		if _, err := svc.Invite(ctx, agent.Actor(), "new@team.example", "New", switchboard.RoleAdmin); switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
			t.Fatalf("an agent inviting: %v", err)
		}
		if _, err := svc.Invite(ctx, admin.Actor(), "sam@team.example", "Sam", ""); switchboard.ErrorCode(err) != switchboard.ECONFLICT {
			t.Fatalf("inviting an existing agent: %v", err)
		}
		link, err := svc.Invite(ctx, admin.Actor(), "New@Team.example", "Nia", switchboard.RoleSupervisor)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := svc.PendingInvite(ctx, link)
		if err != nil || inv.Email != "new@team.example" || inv.Role != switchboard.RoleSupervisor {
			t.Fatalf("pending invite: %+v %v", inv, err)
		}
		if _, _, err := svc.AcceptInvite(ctx, link, "Nia New", "short"); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Fatalf("a short password: %v", err)
		}
		_, sess, err := svc.AcceptInvite(ctx, link, "Nia New", "a long new password")
		if err != nil || sess.Actor.Role != switchboard.RoleSupervisor || sess.Actor.Name != "Nia New" {
			t.Fatalf("accept: %+v %v", sess, err)
		}
		if _, _, err := svc.AcceptInvite(ctx, link, "Eve", "a long new password"); switchboard.ErrorCode(err) != switchboard.ENOTFOUND {
			t.Fatalf("a link used twice: %v", err)
		}
		if _, _, err := svc.Login(ctx, "new@team.example", "a long new password", "192.0.2.9"); err != nil {
			t.Fatalf("the invited agent signs in: %v", err)
		}
		late, _ := svc.Invite(ctx, admin.Actor(), "late@team.example", "Late", "")
		clock.Advance(inbox.InviteTTL + time.Minute)
		if _, _, err := svc.AcceptInvite(ctx, late, "Late", "a long new password"); switchboard.ErrorCode(err) != switchboard.ENOTFOUND {
			t.Fatalf("an expired link: %v", err)
		}
	})
}

func TestCannedResponses(t *testing.T) {
	ctx := context.Background()
	svc := inboxtest.Open(t, "sqlite", inbox.Config{})
	agent := switchboard.Actor{ID: "x", Role: switchboard.RoleAgent}
	if _, err := svc.PutCannedResponse(ctx, agent, inbox.CannedResponse{Shortcut: "hi", Body: "Hello!"}); switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
		t.Fatalf("an agent editing canned responses: %v", err)
	}
	for _, bad := range []inbox.CannedResponse{{Shortcut: "two words", Body: "x"}, {Shortcut: "ok", Body: " "}} {
		if _, err := svc.PutCannedResponse(ctx, switchboard.System, bad); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	if _, err := svc.PutCannedResponse(ctx, switchboard.System, inbox.CannedResponse{Shortcut: "/refund", Body: "Your refund is on its way."}); err != nil {
		t.Fatal(err)
	}
	c, err := svc.PutCannedResponse(ctx, switchboard.System, inbox.CannedResponse{Shortcut: "refund", Title: "Refund sent", Body: "Refunded today."})
	if err != nil {
		t.Fatal(err)
	}
	list, err := svc.CannedResponses(ctx, agent)
	if err != nil || len(list) != 1 || list[0].Body != "Refunded today." || list[0].Title != "Refund sent" {
		t.Fatalf("list after replacing by shortcut: %+v %v", list, err)
	}
	if err := svc.DeleteCannedResponse(ctx, switchboard.System, c.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := svc.CannedResponses(ctx, agent); len(list) != 0 {
		t.Fatalf("after delete: %+v", list)
	}
}
