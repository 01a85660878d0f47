package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
)

var testStores sync.Map // *Main -> *store.DB

// storeOf opens, once per Main, a second handle on its database, for the
// reads tests check that no API answer gives them whole.
func storeOf(tb testing.TB, m *Main) *store.DB {
	tb.Helper()
	if db, ok := testStores.Load(m); ok {
		return db.(*store.DB)
	}
	db, err := store.Open(context.Background(), m.Config.DatabaseURL, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	testStores.Store(m, db)
	tb.Cleanup(func() { testStores.Delete(m); db.Close() })
	return db
}

// addAgent creates an agent through the inbox and returns it with its
// API token.
func addAgent(tb testing.TB, m *Main, a switchboard.Agent) (switchboard.Agent, string) {
	tb.Helper()
	a, token, err := m.Inbox.AddAgent(context.Background(), switchboard.System, a)
	if err != nil {
		tb.Fatal(err)
	}
	return a, token
}

// mergeClaimed checks docs/design.md §3's rule for a web form's phone number: the
// customer who typed phone on the form (as email) and the one who wrote
// or called from phone stay two customers, the first showing the phone as
// a claim that suggests the second; then it merges them as a supervisor
// would, through the API, and returns the kept customer's id.
func mergeClaimed(t *testing.T, m *Main, email, phone string) string {
	t.Helper()
	ctx := context.Background()
	db := storeOf(t, m)
	var formCustomer, phoneCustomer string
	convs, _, err := db.ListConversations(ctx, switchboard.ConversationFilter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range convs {
		cu, err := db.GetCustomer(ctx, c.CustomerID)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range cu.Identities {
			switch id.Value {
			case email:
				formCustomer = cu.ID
			case phone:
				phoneCustomer = cu.ID
			}
		}
	}
	if formCustomer == "" || phoneCustomer == "" || formCustomer == phoneCustomer {
		t.Fatalf("form customer %q and phone customer %q: want two customers, the typed phone linking nothing", formCustomer, phoneCustomer)
	}
	_, token := addAgent(t, m, switchboard.Agent{Name: "Sue Visor", Email: fmt.Sprintf("sue%d@team.example", time.Now().UnixNano()), Role: switchboard.RoleSupervisor})
	call := func(method, path, body string, out any) int {
		t.Helper()
		return callAPI(t, m.URL(), token, method, path, body, out)
	}
	var shown struct {
		Claims []struct {
			Kind, Value string
			Customer    *struct{ ID string }
		}
	}
	if code := call("GET", "/api/v1/customers/"+formCustomer, "", &shown); code != 200 || len(shown.Claims) != 1 ||
		shown.Claims[0].Value != phone || shown.Claims[0].Customer == nil || shown.Claims[0].Customer.ID != phoneCustomer {
		t.Fatalf("form customer: %d %+v, want the phone as a claim suggesting %s", code, shown, phoneCustomer)
	}
	var merged struct{ ID string }
	if code := call("POST", "/api/v1/customers/"+formCustomer+"/merge", `{"other_id":"`+phoneCustomer+`"}`, &merged); code != 200 || merged.ID != formCustomer {
		t.Fatalf("merge: %d %+v", code, merged)
	}
	return formCustomer
}

// callAPI calls the agent API at base as the holder of token and returns
// the status. body goes as JSON: a string as it is, anything else but nil
// marshalled. The answer, when out is given and there is one, must decode
// into out.
func callAPI(t testing.TB, base, token, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(answer) > 0 {
		if err := json.Unmarshal(answer, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, answer, err)
		}
	}
	return resp.StatusCode
}
