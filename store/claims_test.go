package store_test

import (
	"context"
	"testing"

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
