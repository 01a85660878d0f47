package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// TestClaimsNeverLink is the attack a review found: an anonymous form
// with the victim's e-mail and the attacker's phone, then an SMS from that
// phone. The phone is only claimed: the SMS starts its own customer, the
// victim's thread gets nothing, and the claim is kept on the victim with
// the attacker's customer as a suggested merge. Both ingest paths, both
// databases; a merge then makes the claim an identity.
func TestClaimsNeverLink(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		// The victim has written before, by e-mail.
		victim := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelEmail, "<v1@example.com>", "my order", email("victim@example.com")))[0]
		form := inbound(switchboard.ChannelWebform, "form-1", "please text me", email("victim@example.com"))
		form.Claims = []switchboard.IdentityRef{phone("+14155550666")}
		f := mustIngestOpts(t, db, opts, form)[0]
		if f.CustomerID != victim.CustomerID || f.ConversationID != victim.ConversationID {
			t.Fatalf("the form's e-mail picks the victim: %+v", f)
		}
		sms := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "SM1", "hello from the attacker", phone("+14155550666")))[0]
		if sms.CustomerID == victim.CustomerID || sms.ConversationID == victim.ConversationID || !sms.NewConversation {
			t.Fatalf("an SMS from the claimed phone joined the victim: %+v", sms)
		}
		msgs, _, _ := db.Timeline(ctx, victim.CustomerID, "", 1000)
		if len(msgs) != 2 {
			t.Fatalf("victim's timeline has %d messages, want the e-mail and the form only", len(msgs))
		}
		v, err := db.GetCustomer(ctx, victim.CustomerID)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Identities) != 1 || v.Identities[0] != email("victim@example.com") {
			t.Fatalf("victim's identities %v, want the e-mail address only", v.Identities)
		}
		if len(v.Claims) != 1 || v.Claims[0].IdentityRef != phone("+14155550666") || v.Claims[0].OwnerID != sms.CustomerID {
			t.Fatalf("victim's claims %+v, want the phone, suggesting the SMS customer %s", v.Claims, sms.CustomerID)
		}
		// A second form with the same claim keeps one claim.
		again := inbound(switchboard.ChannelWebform, "form-2", "again", email("victim@example.com"))
		again.Claims = form.Claims
		mustIngestOpts(t, db, opts, again)
		if v, _ = db.GetCustomer(ctx, victim.CustomerID); len(v.Claims) != 1 {
			t.Fatalf("claims after the same claim twice: %+v", v.Claims)
		}
		// An agent merges: the phone is the victim's identity now, not a claim.
		if _, err := db.MergeCustomers(ctx, victim.CustomerID, sms.CustomerID, ""); err != nil {
			t.Fatal(err)
		}
		v, _ = db.GetCustomer(ctx, victim.CustomerID)
		if len(v.Identities) != 2 || len(v.Claims) != 0 {
			t.Fatalf("after the merge: identities %v, claims %+v; want both identities and no claim", v.Identities, v.Claims)
		}
		// A claim of the customer's own identity is no claim.
		own := inbound(switchboard.ChannelWebform, "form-3", "own", email("victim@example.com"))
		own.Claims = []switchboard.IdentityRef{phone("+14155550666")}
		mustIngestOpts(t, db, opts, own)
		if v, _ = db.GetCustomer(ctx, victim.CustomerID); len(v.Claims) != 0 {
			t.Fatalf("claiming one's own identity: %+v", v.Claims)
		}
	})
}

// TestUnmerge: a merge of two customers with open conversations, undone,
// gives each back their identities, claims, conversations and messages,
// and the other's next message threads into its own conversation again.
func TestUnmerge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		form := inbound(switchboard.ChannelWebform, "f1", "form", email("ana@example.com"))
		form.Claims = []switchboard.IdentityRef{phone("+14155550111")}
		a := mustIngest(t, db, form)[0]
		clock.Advance(time.Minute)
		b := mustIngest(t, db, inbound(switchboard.ChannelSMS, "SM1", "sms one", phone("+14155550222")))[0]
		clock.Advance(time.Minute)
		mustIngest(t, db, inbound(switchboard.ChannelSMS, "SM2", "sms two", phone("+14155550222")))
		before := func(id string) switchboard.Customer {
			c, err := db.GetCustomer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		aBefore, bBefore := before(a.CustomerID), before(b.CustomerID)
		if _, err := db.MergeCustomers(ctx, a.CustomerID, b.CustomerID, ""); err != nil {
			t.Fatal(err)
		}
		if msgs, _, _ := db.Timeline(ctx, a.CustomerID, "", 100); len(msgs) != 3 {
			t.Fatalf("after the merge: %d messages, want 3", len(msgs))
		}
		if _, err := db.UnmergeCustomers(ctx, a.CustomerID, b.CustomerID, ""); err != nil {
			t.Fatal(err)
		}
		aAfter, bAfter := before(a.CustomerID), before(b.CustomerID)
		if bAfter.MergedInto != "" || !reflect.DeepEqual(aAfter.Identities, aBefore.Identities) || !reflect.DeepEqual(bAfter.Identities, bBefore.Identities) ||
			len(aAfter.Claims) != 1 || aAfter.Claims[0].IdentityRef != phone("+14155550111") {
			t.Fatalf("after undoing: ana %+v, bo %+v; want each as before the merge", aAfter, bAfter)
		}
		for _, c := range []struct {
			customer, conv string
			texts          []string
		}{{a.CustomerID, a.ConversationID, []string{"form"}}, {b.CustomerID, b.ConversationID, []string{"sms one", "sms two"}}} {
			msgs, _, _ := db.Timeline(ctx, c.customer, "", 100)
			var texts []string
			for _, m := range msgs {
				texts = append(texts, m.Text)
				if m.ConversationID != c.conv {
					t.Fatalf("message %q in %s, want %s", m.Text, m.ConversationID, c.conv)
				}
			}
			if !reflect.DeepEqual(texts, c.texts) {
				t.Fatalf("customer %s has %v, want %v", c.customer, texts, c.texts)
			}
			conv, _ := db.GetConversation(ctx, c.conv)
			if conv.Status != switchboard.StatusOpen || conv.CustomerID != c.customer {
				t.Fatalf("conversation %s after undoing: %+v", c.conv, conv)
			}
		}
		r := mustIngest(t, db, inbound(switchboard.ChannelSMS, "SM3", "sms three", phone("+14155550222")))[0]
		if r.CustomerID != b.CustomerID || r.ConversationID != b.ConversationID {
			t.Fatalf("the other's next message: %+v, want its own conversation", r)
		}
		if _, err := db.UnmergeCustomers(ctx, a.CustomerID, b.CustomerID, ""); switchboard.ErrorCode(err) != switchboard.ECONFLICT {
			t.Fatalf("undoing twice: %v, want a conflict", err)
		}
	})
}
