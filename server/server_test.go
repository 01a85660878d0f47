package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/channel/webform"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/ingest"
	"github.com/switchboard-inbox/switchboard/metrics"
	"github.com/switchboard-inbox/switchboard/queue"
	"github.com/switchboard-inbox/switchboard/server"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
	"github.com/switchboard-inbox/switchboard/web"
)

type env struct {
	t       *testing.T
	srv     *server.Server
	url     string
	svc     *inboxtest.DB
	db      *store.DB // fixtures the API offers no operation for
	admin   string    // tokens
	agent   string
	agentID string
	stored  chan struct{}
}

const metricsToken = "metrics-secret-for-tests"

// nopSender stands in for the providers: replies are stored and queued,
// and no outbox sends them in these tests.
type nopSender struct{}

func (nopSender) Send(context.Context, *switchboard.Outbound) (string, error) { return "", nil }

// newEnv serves the API over a fresh inbox on backend where every channel
// can carry replies.
func newEnv(t *testing.T, backend string) *env {
	return newEnvWith(t, backend, switchboard.Channels)
}

// newEnvWith configures sending on the channels given only.
func newEnvWith(t *testing.T, backend string, sending []switchboard.Channel) *env {
	t.Helper()
	return newEnvClock(t, backend, sending, nil)
}

// newEnvClock runs the inbox on clock (nil: the system's).
func newEnvClock(t *testing.T, backend string, sending []switchboard.Channel, clock switchboard.Clock) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ts := httptest.NewUnstartedServer(nil)
	ts.Start()
	t.Cleanup(ts.Close)
	blobs, err := blob.NewLocal(t.TempDir(), ts.URL, []byte("a test signing key of enough length"))
	if err != nil {
		t.Fatal(err)
	}
	svc := inboxtest.Open(t, backend, inbox.Config{Bus: bus.NewMemory(), Blobs: blobs, Clock: clock})
	for _, ch := range sending {
		svc.SetChannel(ch, nil, nopSender{})
	}
	q, err := queue.OpenSQLite(ctx, filepath.Join(t.TempDir(), "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New()
	e := &env{t: t, svc: svc, db: svc.Store(t), url: ts.URL, stored: make(chan struct{}, 1000)}
	p := &ingest.Pipeline{Queue: q, Inbox: svc, Metrics: m, Logger: log,
		OnStored: func([]switchboard.Inbound, []switchboard.IngestResult) { e.stored <- struct{}{} }}
	go p.Run(ctx)
	form := webform.New(webform.Config{Queue: q, Logger: log, RateLimit: webform.RateLimit{Disabled: true}})
	e.srv = &server.Server{Inbox: svc.Service, Queue: q, Metrics: m, Logger: log, Webhooks: map[string]http.Handler{"POST /forms/{form}": form},
		BlobHandler: blobs.Handler(), MetricsToken: metricsToken}
	if e.srv.Pages, err = web.NewPages(svc.Service, log, clock); err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = e.srv.Handler()

	admin, adminToken, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Alex", Email: "alex@team.example", Role: switchboard.RoleAdmin})
	agent, agentToken, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
	if admin.ID == "" || agent.ID == "" {
		t.Fatal("seed agents")
	}
	e.admin, e.agent, e.agentID = adminToken, agentToken, agent.ID
	return e
}

// do sends a request and decodes a JSON answer into out (when non-nil),
// returning the status.
func (e *env) do(method, path, token, contentType string, body []byte, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func (e *env) api(method, path, token string, body any, out any) int {
	e.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return e.do(method, path, token, "application/json", b, out)
}

// postForm posts a contact form and waits until the pipeline stored it.
func (e *env) postForm(fields map[string]string) {
	e.t.Helper()
	b, _ := json.Marshal(fields)
	if code := e.do("POST", "/forms/contact", "", "application/json", b, nil); code != http.StatusAccepted {
		e.t.Fatalf("form post: status %d", code)
	}
	select {
	case <-e.stored:
	case <-time.After(10 * time.Second):
		e.t.Fatal("form post was not stored within 10s")
	}
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type conv struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Customer struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"customer"`
	Assignee *struct {
		ID string `json:"id"`
	} `json:"assignee"`
	LastChannel string   `json:"last_channel"`
	Channels    []string `json:"channels"`
	Messages    []struct {
		ID        string `json:"id"`
		Direction string `json:"direction"`
		Text      string `json:"text"`
		Status    string `json:"status"`
		Channel   string `json:"channel"`
	} `json:"messages"`
	Events []struct {
		Type string `json:"type"`
	} `json:"events"`
}

func TestAgentAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		e.postForm(map[string]string{"name": "Ana", "email": "Ana@Example.com", "subject": "Parcel", "message": "Where is my parcel?"})
		e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "Any news?"})
		e.postForm(map[string]string{"name": "Bo", "email": "bo@example.com", "message": "Invoice question"})

		var list struct {
			Conversations []conv `json:"conversations"`
			NextCursor    string `json:"next_cursor"`
		}
		if code := e.api("GET", "/api/v1/conversations", e.agent, nil, &list); code != 200 || len(list.Conversations) != 2 {
			t.Fatalf("list: %d %+v", code, list)
		}
		if list.Conversations[0].Customer.Name != "Bo" {
			t.Fatalf("newest first: got %+v", list.Conversations[0])
		}
		var page struct {
			Conversations []conv `json:"conversations"`
			NextCursor    string `json:"next_cursor"`
		}
		e.api("GET", "/api/v1/conversations?limit=1", e.agent, nil, &page)
		if len(page.Conversations) != 1 || page.NextCursor == "" {
			t.Fatalf("limit=1: %+v", page)
		}
		e.api("GET", "/api/v1/conversations?limit=1&cursor="+page.NextCursor, e.agent, nil, &page)
		if len(page.Conversations) != 1 || page.Conversations[0].Customer.Name != "Ana" || page.NextCursor != "" {
			t.Fatalf("second page: %+v", page)
		}
		ana := page.Conversations[0]

		var shown conv
		if code := e.api("GET", "/api/v1/conversations/"+ana.ID, e.agent, nil, &shown); code != 200 || len(shown.Messages) != 2 {
			t.Fatalf("show: %d %+v", code, shown)
		}
		if shown.Messages[0].Text != "Where is my parcel?" || shown.Messages[1].Text != "Any news?" || shown.Messages[0].Channel != "webform" {
			t.Fatalf("messages oldest first: %+v", shown.Messages)
		}

		var cust struct {
			ID         string `json:"id"`
			Identities []struct{ Kind, Value string }
		}
		if code := e.api("GET", "/api/v1/customers/"+ana.Customer.ID, e.agent, nil, &cust); code != 200 || len(cust.Identities) != 1 || cust.Identities[0].Value != "ana@example.com" {
			t.Fatalf("customer: %d %+v", code, cust)
		}

		var msg struct {
			ID, Status, Channel, Direction string
		}
		if code := e.api("POST", "/api/v1/conversations/"+ana.ID+"/messages", e.agent, map[string]string{"text": "It ships today."}, &msg); code != 202 {
			t.Fatalf("reply: %d", code)
		}
		if msg.Status != "queued" || msg.Channel != "webform" || msg.Direction != "out" {
			t.Fatalf("reply = %+v, want queued out on the last channel", msg)
		}

		if code := e.api("GET", "/api/v1/search?q=parcel", e.agent, nil, &struct{}{}); code != 200 {
			t.Fatalf("search: %d", code)
		}
		var qlist struct{ Conversations []conv }
		e.api("GET", "/api/v1/conversations?q=invoice", e.agent, nil, &qlist)
		if len(qlist.Conversations) != 1 || qlist.Conversations[0].Customer.Name != "Bo" {
			t.Fatalf("q=invoice: %+v", qlist)
		}

		// Assignment: an agent takes it; moving it to someone else needs a supervisor.
		var c conv
		if code := e.api("POST", "/api/v1/conversations/"+ana.ID+"/assign", e.agent, map[string]any{"agent_id": e.agentID}, &c); code != 200 || c.Assignee == nil || c.Assignee.ID != e.agentID {
			t.Fatalf("self-assign: %d %+v", code, c)
		}
		var ae apiError
		if code := e.api("POST", "/api/v1/conversations/"+ana.ID+"/assign", e.agent, map[string]any{"agent_id": nil}, &c); code != 200 || c.Assignee != nil {
			t.Fatalf("hand back: %d %+v", code, c)
		}
		if code := e.api("POST", "/api/v1/conversations/"+list.Conversations[0].ID+"/assign", e.agent, map[string]any{"agent_id": "someone-else"}, &ae); code != 403 || ae.Error.Code != "forbidden" {
			t.Fatalf("agent assigning others: %d %+v", code, ae)
		}
		if code := e.api("POST", "/api/v1/conversations/"+ana.ID+"/assign", e.admin, map[string]any{"agent_id": "nobody"}, &ae); code != 404 {
			t.Fatalf("assign to unknown agent: %d", code)
		}

		if code := e.api("POST", "/api/v1/conversations/"+ana.ID+"/status", e.agent, map[string]string{"status": "resolved"}, &c); code != 200 || c.Status != "resolved" {
			t.Fatalf("resolve: %d %+v", code, c)
		}
		var filtered struct{ Conversations []conv }
		e.api("GET", "/api/v1/conversations?status=resolved", e.agent, nil, &filtered)
		if len(filtered.Conversations) != 1 || filtered.Conversations[0].ID != ana.ID {
			t.Fatalf("status filter: %+v", filtered)
		}

		// Merging joins two people's histories: supervisors only (docs/design.md
		// §4.1). Merge Bo into Ana; Bo's id then redirects.
		var refused apiError
		if code := e.api("POST", "/api/v1/customers/"+ana.Customer.ID+"/merge", e.agent, map[string]string{"other_id": list.Conversations[0].Customer.ID}, &refused); code != http.StatusForbidden || refused.Error.Code != "forbidden" {
			t.Fatalf("an agent merging: %d %+v, want 403 forbidden", code, refused)
		}
		var merged struct {
			ID         string
			Identities []struct{ Kind, Value string }
		}
		if code := e.api("POST", "/api/v1/customers/"+ana.Customer.ID+"/merge", e.admin, map[string]string{"other_id": list.Conversations[0].Customer.ID}, &merged); code != 200 || len(merged.Identities) != 2 {
			t.Fatalf("merge: %d %+v", code, merged)
		}
		if code := e.api("GET", "/api/v1/customers/"+list.Conversations[0].Customer.ID, e.agent, nil, nil); code != http.StatusPermanentRedirect {
			t.Fatalf("merged customer: status %d, want 308", code)
		}
		// And the merge can be undone, by a supervisor: Bo is Bo again.
		bo := list.Conversations[0].Customer.ID
		if code := e.api("POST", "/api/v1/customers/"+ana.Customer.ID+"/unmerge", e.agent, map[string]string{"other_id": bo}, nil); code != http.StatusForbidden {
			t.Fatalf("an agent undoing a merge: %d, want 403", code)
		}
		var parted struct {
			Identities []struct{ Kind, Value string }
		}
		if code := e.api("POST", "/api/v1/customers/"+ana.Customer.ID+"/unmerge", e.admin, map[string]string{"other_id": bo}, &parted); code != 200 || len(parted.Identities) != 1 {
			t.Fatalf("unmerge: %d %+v, want Ana with her one identity", code, parted)
		}
		if code := e.api("GET", "/api/v1/customers/"+bo, e.agent, nil, nil); code != 200 {
			t.Fatalf("unmerged customer: status %d, want 200", code)
		}
		if code := e.api("POST", "/api/v1/customers/"+ana.Customer.ID+"/merge", e.admin, map[string]string{"other_id": bo}, nil); code != 200 {
			t.Fatalf("merging again: %d", code)
		}

		var agents struct {
			Agents []struct {
				Name string
				Caps struct{ Chat, Email int }
			}
		}
		if code := e.api("GET", "/api/v1/agents", e.agent, nil, &agents); code != 200 || len(agents.Agents) != 2 || agents.Agents[0].Caps.Chat != 6 {
			t.Fatalf("agents: %d %+v", code, agents)
		}
		if code := e.api("PATCH", "/api/v1/agents/"+e.agentID, e.agent, map[string]any{"skills": []string{"billing"}}, &ae); code != 403 {
			t.Fatalf("agent patching: %d", code)
		}
		var patched struct{ Skills []string }
		if code := e.api("PATCH", "/api/v1/agents/"+e.agentID, e.admin, map[string]any{"skills": []string{"billing"}}, &patched); code != 200 || len(patched.Skills) != 1 {
			t.Fatalf("admin patch: %d %+v", code, patched)
		}

		var health map[string]any
		if code := e.api("GET", "/healthz", "", nil, &health); code != 200 || health["status"] != "ok" {
			t.Fatalf("healthz: %d %v", code, health)
		}
	})
}

func TestAPIErrors(t *testing.T) {
	e := newEnv(t, "sqlite")
	e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "hi"})
	var list struct{ Conversations []conv }
	e.api("GET", "/api/v1/conversations", e.agent, nil, &list)
	id := list.Conversations[0].ID
	cases := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"no token", "GET", "/api/v1/conversations", "", "", 401, "unauthorized"},
		{"bad token", "GET", "/api/v1/conversations", "sb_nope", "", 401, "unauthorized"},
		{"bad limit", "GET", "/api/v1/conversations?limit=abc", e.agent, "", 400, "invalid"},
		{"bad status filter", "GET", "/api/v1/conversations?status=closed", e.agent, "", 400, "invalid"},
		{"bad channel filter", "GET", "/api/v1/conversations?channel=pigeon", e.agent, "", 400, "invalid"},
		{"bad cursor", "GET", "/api/v1/conversations?cursor=zzz", e.agent, "", 400, "invalid"},
		{"unknown conversation", "GET", "/api/v1/conversations/nope", e.agent, "", 404, "not_found"},
		{"malformed JSON", "POST", "/api/v1/conversations/" + id + "/messages", e.agent, `{"text":`, 400, "invalid"},
		{"unknown field", "POST", "/api/v1/conversations/" + id + "/messages", e.agent, `{"txt":"hi"}`, 400, "invalid"},
		{"empty body", "POST", "/api/v1/conversations/" + id + "/messages", e.agent, ``, 400, "invalid"},
		{"empty text", "POST", "/api/v1/conversations/" + id + "/messages", e.agent, `{"text":"  "}`, 400, "invalid"},
		{"unknown channel", "POST", "/api/v1/conversations/" + id + "/messages", e.agent, `{"text":"hi","channel":"fax"}`, 400, "invalid"},
		{"reply to unknown", "POST", "/api/v1/conversations/nope/messages", e.agent, `{"text":"hi"}`, 404, "not_found"},
		{"template without channel", "POST", "/api/v1/conversations/" + id + "/messages", e.agent, `{"text":"hi","template":{"name":"x"}}`, 422, "channel_policy"},
		{"bad status", "POST", "/api/v1/conversations/" + id + "/status", e.agent, `{"status":"closed"}`, 400, "invalid"},
		{"merge self", "POST", "/api/v1/customers/" + list.Conversations[0].Customer.ID + "/merge", e.admin, `{"other_id":"` + list.Conversations[0].Customer.ID + `"}`, 400, "invalid"},
		{"merge missing other", "POST", "/api/v1/customers/" + list.Conversations[0].Customer.ID + "/merge", e.admin, `{}`, 400, "invalid"},
		{"search without q", "GET", "/api/v1/search", e.agent, "", 400, "invalid"},
		{"huge body", "POST", "/api/v1/conversations/" + id + "/messages", e.agent, `{"text":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "too_large"},
		{"no route", "GET", "/api/v1/nothing", e.agent, "", 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ae apiError
			code := e.do(c.method, c.path, c.token, "application/json", []byte(c.body), &ae)
			if code != c.status || ae.Error.Code != c.code || ae.Error.Message == "" {
				t.Fatalf("status %d %+v, want %d %s with a message", code, ae, c.status, c.code)
			}
		})
	}
	var shown conv
	e.api("GET", "/api/v1/conversations/"+id, e.agent, nil, &shown)
	if len(shown.Messages) != 1 {
		t.Fatalf("refused requests stored messages: %+v", shown.Messages)
	}
}

func TestBadFormPostsStoreNothing(t *testing.T) {
	e := newEnv(t, "sqlite")
	cases := []struct {
		name, path, contentType string
		body                    []byte
		status                  int
	}{
		{"malformed JSON", "/forms/contact", "application/json", []byte(`{"email":`), 400},
		{"missing fields", "/forms/contact", "application/json", []byte(`{"name":"x"}`), 400},
		{"bad email", "/forms/contact", "application/json", []byte(`{"email":"not-an-email","message":"hi"}`), 400},
		{"10 MB", "/forms/contact", "application/x-www-form-urlencoded", append([]byte("email=a%40example.com&message="), bytes.Repeat([]byte("a"), 10<<20)...), 413},
		{"invalid UTF-8", "/forms/contact", "application/json", []byte("{\"email\":\"a@example.com\",\"message\":\"\xff\xfe\"}"), 400},
		{"unknown form", "/forms/nope", "application/json", []byte(`{"email":"a@example.com","message":"hi"}`), 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ae apiError
			if code := e.do("POST", c.path, "", c.contentType, c.body, &ae); code != c.status || ae.Error.Code == "" {
				t.Fatalf("status %d %+v, want %d with a JSON error", code, ae, c.status)
			}
		})
	}
	var list struct{ Conversations []conv }
	e.api("GET", "/api/v1/conversations", e.agent, nil, &list)
	if len(list.Conversations) != 0 {
		t.Fatalf("bad posts stored %d conversations", len(list.Conversations))
	}
	var metrics bytes.Buffer
	req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(&metrics, resp.Body)
	resp.Body.Close()
	if !strings.Contains(metrics.String(), "switchboard_processing_seconds_bucket") {
		t.Fatalf("metrics lack the processing histogram:\n%s", metrics.String())
	}
}

// upload posts a file as multipart/form-data and returns the status and
// decoded answer.
func (e *env) upload(name string, content []byte, out any) int {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(content)
	mw.Close()
	return e.do("POST", "/api/v1/uploads", e.agent, mw.FormDataContentType(), buf.Bytes(), out)
}

func TestUploadsAndAttachments(t *testing.T) {
	e := newEnv(t, "sqlite")
	e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "photo please"})
	var list struct{ Conversations []conv }
	e.api("GET", "/api/v1/conversations", e.agent, nil, &list)
	id := list.Conversations[0].ID

	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 2000)...)
	var up struct {
		ID, URL, Name string
		ContentType   string `json:"content_type"`
		Size          int64
	}
	if code := e.upload("../../label <1>.png", png, &up); code != http.StatusCreated || up.ID == "" || up.Size != int64(len(png)) {
		t.Fatalf("upload: %d %+v", code, up)
	}
	if up.Name != "label _1_.png" {
		t.Fatalf("cleaned name = %q", up.Name)
	}
	resp, err := http.Get(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, png) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("signed URL: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
	}

	var ae apiError
	if code := e.upload("page.png", []byte("<html><script>alert(1)</script></html>"), &ae); code != 400 || !strings.Contains(ae.Error.Message, "text/html") {
		t.Fatalf("HTML disguised as png: %d %+v", code, ae)
	}
	if code := e.upload("big.bin", bytes.Repeat([]byte("a"), inbox.MaxUploadBytes+10), &ae); code != 413 {
		t.Fatalf("oversized upload: %d %+v", code, ae)
	}
	if code := e.upload("empty.txt", nil, &ae); code != 400 {
		t.Fatalf("empty upload: %d", code)
	}

	var msg struct {
		Attachments []struct {
			ID, URL, Name string
			Size          int64
		}
	}
	if code := e.api("POST", "/api/v1/conversations/"+id+"/messages", e.agent, map[string]any{"text": "here", "attachments": []string{up.ID}}, &msg); code != 202 || len(msg.Attachments) != 1 || msg.Attachments[0].Size != int64(len(png)) || msg.Attachments[0].URL == "" {
		t.Fatalf("reply with attachment: %d %+v", code, msg)
	}
	if code := e.api("POST", "/api/v1/conversations/"+id+"/messages", e.agent, map[string]any{"text": "x", "attachments": []string{"nope"}}, &ae); code != 400 {
		t.Fatalf("unknown upload: %d", code)
	}
}

// TestRefusals: a reply on a channel nothing can send on is refused up
// front and stores nothing; an agent cannot take a colleague's
// conversation.
func TestRefusals(t *testing.T) {
	e := newEnvWith(t, "sqlite", nil) // nothing can send
	e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "hi"})
	var list struct{ Conversations []conv }
	e.api("GET", "/api/v1/conversations", e.agent, nil, &list)
	id := list.Conversations[0].ID
	var ae apiError
	if code := e.api("POST", "/api/v1/conversations/"+id+"/messages", e.agent, map[string]string{"text": "hello"}, &ae); code != 422 || ae.Error.Code != "channel_policy" {
		t.Fatalf("reply on an unconfigured channel: %d %+v", code, ae)
	}
	var note struct{ Direction string }
	if code := e.api("POST", "/api/v1/conversations/"+id+"/messages", e.agent, map[string]any{"text": "internal", "note": true}, &note); code != 202 || note.Direction != "note" {
		t.Fatalf("a note needs no channel: %d %+v", code, note)
	}
	var shown conv
	e.api("GET", "/api/v1/conversations/"+id, e.agent, nil, &shown)
	if len(shown.Messages) != 2 {
		t.Fatalf("%d messages, want the inbound one and the note", len(shown.Messages))
	}

	other, _ := e.db.CreateAgent(context.Background(), switchboard.Agent{Name: "Kim", Email: "kim@team.example"}, "")
	if _, err := e.db.Assign(context.Background(), id, other.ID, "", "manual", "test"); err != nil {
		t.Fatal(err)
	}
	if code := e.api("POST", "/api/v1/conversations/"+id+"/assign", e.agent, map[string]any{"agent_id": e.agentID}, &ae); code != 403 {
		t.Fatalf("agent taking a colleague's conversation: %d", code)
	}
	var c conv
	if code := e.api("POST", "/api/v1/conversations/"+id+"/assign", e.admin, map[string]any{"agent_id": e.agentID}, &c); code != 200 || c.Assignee.ID != e.agentID {
		t.Fatalf("supervisor moving it: %d %+v", code, c)
	}
}

// TestRefusedRequestShapes: a NUL or invalid UTF-8 in a query or an id is
// a 400 on both databases (PostgreSQL would fail on it), a wrong method a
// 405 naming the right ones, a body that is not JSON a 415, and a merged
// customer's redirect answers JSON.
func TestRefusedRequestShapes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "hi"})
		e.postForm(map[string]string{"name": "Bo", "email": "bo@example.com", "message": "hi"})
		var list struct{ Conversations []conv }
		e.api("GET", "/api/v1/conversations", e.agent, nil, &list)
		id := list.Conversations[0].ID
		for _, c := range []struct {
			name, method, path, contentType, body string
			status                                int
			code                                  string
		}{
			{"NUL in q", "GET", "/api/v1/conversations?q=%00", "", "", 400, "invalid"},
			{"NUL in assignee", "GET", "/api/v1/conversations?assignee=%00", "", "", 400, "invalid"},
			{"NUL in an id", "GET", "/api/v1/conversations/a%00b", "", "", 400, "invalid"},
			{"NUL in search", "GET", "/api/v1/search?q=order%00", "", "", 400, "invalid"},
			{"invalid UTF-8 in q", "GET", "/api/v1/conversations?q=%ff%fe", "", "", 400, "invalid"},
			{"wrong method", "DELETE", "/api/v1/conversations/" + id, "", "", 405, "method_not_allowed"},
			{"PUT on a GET and POST route", "PUT", "/api/v1/conversations/" + id + "/messages", "", "", 405, "method_not_allowed"},
			{"text/plain body", "POST", "/api/v1/conversations/" + id + "/messages", "text/plain", `{"text":"hi"}`, 415, "unsupported_media_type"},
			{"form body", "POST", "/api/v1/conversations/" + id + "/status", "application/x-www-form-urlencoded", `status=resolved`, 415, "unsupported_media_type"},
		} {
			t.Run(c.name, func(t *testing.T) {
				var ae apiError
				code := e.do(c.method, c.path, e.agent, c.contentType, []byte(c.body), &ae)
				if code != c.status || ae.Error.Code != c.code || ae.Error.Message == "" {
					t.Fatalf("status %d %+v, want %d %s with a message", code, ae, c.status, c.code)
				}
			})
		}
		req, _ := http.NewRequest("DELETE", e.url+"/api/v1/conversations/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+e.agent)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.Header.Get("Allow") != "GET" {
			t.Fatalf("Allow on a wrong method: %v %v", resp.Header, err)
		}
		// Merge Bo into Ana; Bo's address then answers a JSON redirect.
		ana, bo := list.Conversations[1].Customer.ID, list.Conversations[0].Customer.ID
		if code := e.api("POST", "/api/v1/customers/"+ana+"/merge", e.admin, map[string]string{"other_id": bo}, nil); code != 200 {
			t.Fatalf("merge: %d", code)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ = http.NewRequest("GET", e.url+"/api/v1/customers/"+bo, nil)
		req.Header.Set("Authorization", "Bearer "+e.agent)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var redirect struct {
			MergedInto string `json:"merged_into"`
		}
		json.NewDecoder(resp.Body).Decode(&redirect)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "/api/v1/customers/"+ana ||
			resp.Header.Get("Content-Type") != "application/json" || redirect.MergedInto != ana {
			t.Fatalf("merged customer: %d %v %+v, want a JSON 308 to %s", resp.StatusCode, resp.Header, redirect, ana)
		}
	})
}

// TestSearchBounds: a full-text query is bounded in length and words, with
// a clear 400, on both databases and both search paths; a query within
// the bounds still finds its message.
func TestSearchBounds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "message": "the blue teapot arrived cracked"})
		huge := url.QueryEscape(strings.Repeat("word ", 100000))
		for _, path := range []string{"/api/v1/search?q=", "/api/v1/conversations?q="} {
			for _, q := range []string{huge, url.QueryEscape(strings.Repeat("x", 300)), url.QueryEscape(strings.Repeat("a ", 13))} {
				var ae apiError
				start := time.Now()
				if code := e.do("GET", path+q, e.agent, "", nil, &ae); code != 400 || ae.Error.Code != "invalid" || !strings.Contains(ae.Error.Message, "at most") {
					t.Fatalf("%s with a %d-byte query: %d %+v, want 400 naming the bound", path, len(q), code, ae)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("refusing a long query took %v", d)
				}
			}
		}
		var found struct{ Messages []struct{ Text string } }
		if code := e.api("GET", "/api/v1/search?q="+url.QueryEscape("blue teapot cracked"), e.agent, nil, &found); code != 200 || len(found.Messages) != 1 {
			t.Fatalf("a search within the bounds: %d %+v", code, found)
		}
	})
}

// TestTimelinePaging: a customer with many messages gets the latest page
// with the conversation and the rest backwards, page by page, each oldest
// first, none twice, on both databases.
func TestTimelinePaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		var items []switchboard.Inbound
		for i := 0; i < 130; i++ {
			items = append(items, switchboard.Inbound{Channel: switchboard.ChannelSMS, ProviderID: fmt.Sprintf("SM%03d", i), ContentType: switchboard.ContentText,
				Text: fmt.Sprintf("message %03d", i), ReceivedAt: time.Date(2026, 3, 1, 0, 0, i, 0, time.UTC),
				Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+14155550100"}}})
		}
		res, err := e.svc.Ingest(ctx, items)
		if err != nil {
			t.Fatal(err)
		}
		id := res[0].ConversationID
		var detail struct {
			Messages   []struct{ Text string }
			NextCursor string `json:"next_cursor"`
		}
		if code := e.api("GET", "/api/v1/conversations/"+id, e.agent, nil, &detail); code != 200 || len(detail.Messages) != 50 || detail.NextCursor == "" {
			t.Fatalf("conversation: %d, %d messages, cursor %q; want the latest 50 and a cursor", code, len(detail.Messages), detail.NextCursor)
		}
		got := detail.Messages
		cursor := detail.NextCursor
		for page := 0; cursor != ""; page++ {
			var p struct {
				Messages   []struct{ Text string }
				NextCursor string `json:"next_cursor"`
			}
			if code := e.api("GET", "/api/v1/conversations/"+id+"/messages?limit=50&before="+url.QueryEscape(cursor), e.agent, nil, &p); code != 200 || page > 3 {
				t.Fatalf("page %d: %d", page, code)
			}
			got = append(p.Messages, got...)
			cursor = p.NextCursor
		}
		if len(got) != 130 {
			t.Fatalf("%d messages in all, want 130", len(got))
		}
		for i, m := range got {
			if want := fmt.Sprintf("message %03d", i); m.Text != want {
				t.Fatalf("message %d is %q, want %q: pages out of order or overlapping", i, m.Text, want)
			}
		}
		var ae apiError
		if code := e.api("GET", "/api/v1/conversations/"+id+"/messages?before=zzz", e.agent, nil, &ae); code != 400 {
			t.Fatalf("bad cursor: %d %+v", code, ae)
		}
	})
}

// TestMetricsProtected: /metrics is for operators: refused without the
// metrics token, whatever else the caller holds, and served with it.
func TestMetricsProtected(t *testing.T) {
	e := newEnv(t, "sqlite")
	for _, c := range []struct {
		name, auth string
		status     int
	}{
		{"anonymous", "", 401},
		{"an agent's token", "Bearer " + e.admin, 401},
		{"a wrong token", "Bearer nope", 401},
		{"the metrics token", "Bearer " + metricsToken, 200},
	} {
		req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.status == 200) != strings.Contains(string(b), "switchboard_") {
			t.Errorf("%s: %d %.80s", c.name, resp.StatusCode, b)
		}
	}
	// Without a token configured it is not served on the public address.
	e.srv.MetricsToken = ""
	h := e.srv.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 || strings.Contains(rec.Body.String(), "switchboard_") {
		t.Fatalf("no token configured: %d %.80s", rec.Code, rec.Body)
	}
}
