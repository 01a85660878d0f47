package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// binAgent runs `switchboard agent add` on the data directory dir and
// returns the token it prints on its last line.
func binAgent(t *testing.T, dir, email, role string) string {
	t.Helper()
	return binAgentEnv(t, []string{"SWITCHBOARD_DATA_DIR=" + dir}, email, role)
}

// apiClient calls a served instance's agent API with a token.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c apiClient) do(method, path, body string, out any) int {
	c.t.Helper()
	return callAPI(c.t, c.base, c.token, method, path, body, out)
}

// TestClaimedPhoneEndToEnd runs the attack against the built binary: an
// anonymous form with the victim's e-mail and the attacker's phone, then a
// signed SMS from that phone. The SMS lands in a customer of its own, the
// victim's conversation shows the phone only as a claim suggesting that
// customer, and an SMS reply in the victim's conversation is refused
// before anything is sent: the victim has no phone number.
func TestClaimedPhoneEndToEnd(t *testing.T) {
	// Nothing may reach the stand-in here; plain HTTP keeps the binary
	// from needing its certificate.
	twilio := twiliotest.New(testSID, testToken)
	srv := httptest.NewServer(twilio.Handler())
	twilio.SetBaseURL(srv.URL)
	t.Cleanup(func() { twilio.Close(); srv.Close() })
	ts := srv.URL
	dir := t.TempDir()
	addr := freeAddr(t)
	c := startServe(t, addr, []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_PUBLIC_URL=http://" + addr,
		"SWITCHBOARD_TWILIO_ACCOUNT_SID=" + testSID, "SWITCHBOARD_TWILIO_AUTH_TOKEN=" + testToken,
		"SWITCHBOARD_TWILIO_API_URL=" + ts, "SWITCHBOARD_TWILIO_FROM=" + ourNumber, "SWITCHBOARD_ROUTING_OFF=true"})
	defer c.stop()
	base := "http://" + addr
	api := apiClient{t: t, base: base, token: binAgent(t, dir, "sue@team.example", "supervisor")}

	form, _ := json.Marshal(map[string]string{"name": "Vic Tim", "email": "victim@example.com", "phone": "+1 415 555 0666", "message": "My order?"})
	if resp, err := http.Post(base+"/forms/contact", "application/json", bytes.NewReader(form)); err != nil || resp.StatusCode != 202 {
		t.Fatalf("form: %v %v", resp, err)
	}
	resp, err := twilio.SendInbound(context.Background(), http.DefaultClient, base+"/webhooks/twilio/sms",
		twiliotest.Inbound{From: "+14155550666", To: ourNumber, Body: "hi, it's me"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("SMS: %v %v", resp, err)
	}
	type conv struct {
		ID       string
		Customer struct{ ID, Name string }
		Channels []string
	}
	var list struct{ Conversations []conv }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		api.do("GET", "/api/v1/conversations", "", &list)
		if len(list.Conversations) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("conversations: %+v, want the form's and the SMS's, apart", list.Conversations)
		}
	}
	var victim, attacker conv
	for _, cv := range list.Conversations {
		if strings.Join(cv.Channels, ",") == "webform" {
			victim = cv
		} else {
			attacker = cv
		}
	}
	if victim.ID == "" || attacker.Customer.ID == "" || victim.Customer.ID == attacker.Customer.ID {
		t.Fatalf("victim %+v, attacker %+v: want two customers", victim, attacker)
	}
	var cust struct {
		Identities []struct {
			Kind, Value string
			Verified    bool
		}
		Claims []struct {
			Kind, Value string
			Customer    *struct{ ID string }
		}
	}
	api.do("GET", "/api/v1/customers/"+victim.Customer.ID, "", &cust)
	if len(cust.Identities) != 1 || cust.Identities[0].Kind != "email" || cust.Identities[0].Verified ||
		len(cust.Claims) != 1 || cust.Claims[0].Value != "+14155550666" || cust.Claims[0].Customer == nil || cust.Claims[0].Customer.ID != attacker.Customer.ID {
		t.Fatalf("victim: %+v, want the e-mail (unverified) and the phone as a claim suggesting %s", cust, attacker.Customer.ID)
	}
	var refused struct {
		Error struct{ Code, Message string }
	}
	if code := api.do("POST", "/api/v1/conversations/"+victim.ID+"/messages", `{"channel":"sms","text":"Your code is 1234"}`, &refused); code != 422 || refused.Error.Code != "channel_policy" {
		t.Fatalf("SMS reply to the victim: %d %+v, want 422: the victim has no phone", code, refused)
	}
	time.Sleep(200 * time.Millisecond)
	if sent := twilio.Messages(); len(sent) != 0 {
		t.Fatalf("messages sent to Twilio: %+v, want none", sent)
	}
}

// TestSearchCannotTakeTheAPIDown runs against the built binary, on SQLite
// and on PostgreSQL: eight 100,000-word searches at once are refused at
// once with a 400, while /healthz and another agent's requests keep
// answering.
func TestSearchCannotTakeTheAPIDown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		dir := t.TempDir()
		env := []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_ROUTING_OFF=true"}
		if backend == "postgres" {
			env = append(env, "SWITCHBOARD_DATABASE_URL="+storetest.URL(t, backend))
		}
		addr := freeAddr(t)
		c := startServe(t, addr, env)
		defer c.stop()
		base := "http://" + addr
		api := apiClient{t: t, base: base, token: binAgentEnv(t, env, "sue@team.example", "agent")}
		form, _ := json.Marshal(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "the blue teapot"})
		if resp, err := http.Post(base+"/forms/contact", "application/json", bytes.NewReader(form)); err != nil || resp.StatusCode != 202 {
			t.Fatalf("form: %v %v", resp, err)
		}
		huge := "/api/v1/search?q=" + url.QueryEscape(strings.Repeat("word ", 100000))
		var wg sync.WaitGroup
		codes := make([]int, 8)
		start := time.Now()
		for i := range codes {
			wg.Add(1)
			go func() { defer wg.Done(); codes[i] = api.do("GET", huge, "", nil) }()
		}
		health, err := http.Get(base + "/healthz")
		if err != nil || health.StatusCode != 200 {
			t.Fatalf("healthz during the searches: %v %v", health, err)
		}
		var list struct{ Conversations []struct{ ID string } }
		if code := api.do("GET", "/api/v1/conversations", "", &list); code != 200 {
			t.Fatalf("the conversation list during the searches: %d", code)
		}
		wg.Wait()
		for i, code := range codes {
			if code != 400 {
				t.Fatalf("search %d: %d, want 400", i, code)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("eight refused searches took %v", d)
		}
	})
}

// binAgentEnv runs `switchboard agent add` with env (the configuration
// serve runs with) and returns the token it prints on its last line.
func binAgentEnv(t *testing.T, env []string, email, role string) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "add", "--email", email, "--name", "Sue", "--role", role)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agent add: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
