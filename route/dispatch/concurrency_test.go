package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/route/dispatch"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// The concurrency workload: 2,000 conversations (1,500 chat, 500 e-mail)
// for 20 agents with caps of 60 chats and 20 e-mails, so 1,200 chats and
// 400 e-mails can be placed and the caps bind.
const (
	concChats, concEmails = 1500, 500
	concAgents            = 20
	concCapChat           = 60
	concCapEmail          = 20
)

func seedConcurrency(t *testing.T, db *store.DB) map[string]switchboard.ChannelClass {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < concAgents; i++ {
		capChat, capEmail := concCapChat, concCapEmail
		a, err := db.CreateAgent(ctx, switchboard.Agent{Name: fmt.Sprintf("A%02d", i), Email: fmt.Sprintf("a%d@team.example", i), CapChat: capChat, CapEmail: capEmail}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetAgentStatus(ctx, a.ID, switchboard.AgentOnline); err != nil {
			t.Fatal(err)
		}
	}
	var items []switchboard.Inbound
	for i := 0; i < concChats+concEmails; i++ {
		ch := switchboard.ChannelWhatsApp
		if i%4 == 3 {
			ch = switchboard.ChannelEmail
		}
		items = append(items, switchboard.Inbound{Channel: ch, ProviderID: fmt.Sprintf("c%d", i), Identities: []switchboard.IdentityRef{identity(ch, i)}, ContentType: "text", Text: "hello"})
	}
	convs := map[string]switchboard.ChannelClass{}
	for start := 0; start < len(items); start += 500 {
		res, err := db.Ingest(ctx, items[start:start+500], store.IngestOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil || !r.NewConversation {
				t.Fatalf("seed: %+v", r)
			}
			convs[r.ConversationID] = items[start+i].Channel.Class()
		}
	}
	return convs
}

// checkReplay replays every assigned and unassigned event in order and
// fails if an agent ever held more than its cap of a class, or a
// conversation was assigned while assigned. It checks the final counts.
func checkReplay(t *testing.T, db *store.DB, convs map[string]switchboard.ChannelClass) {
	t.Helper()
	ctx := context.Background()
	var all []switchboard.Event
	for id := range convs {
		evs, err := db.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == switchboard.EventAssigned || e.Type == switchboard.EventUnassigned {
				all = append(all, e)
			}
		}
	}
	slices.SortFunc(all, func(a, b switchboard.Event) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmpStr(a.ID, b.ID)
	})
	holder := map[string]string{}
	active := map[string]map[switchboard.ChannelClass]int{}
	peak := 0
	for _, e := range all {
		var d struct {
			AgentID string `json:"agent_id"`
			From    string `json:"from"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		class := convs[e.ConversationID]
		if e.Type == switchboard.EventUnassigned {
			active[d.From][class]--
			delete(holder, e.ConversationID)
			continue
		}
		if h, ok := holder[e.ConversationID]; ok {
			t.Fatalf("conversation %s assigned to %s while %s had it", e.ConversationID, d.AgentID, h)
		}
		holder[e.ConversationID] = d.AgentID
		if active[d.AgentID] == nil {
			active[d.AgentID] = map[switchboard.ChannelClass]int{}
		}
		active[d.AgentID][class]++
		cap := concCapChat
		if class == switchboard.ClassEmail {
			cap = concCapEmail
		}
		if n := active[d.AgentID][class]; n > cap {
			t.Fatalf("agent %s reached %d %s conversations, over the cap of %d", d.AgentID, n, class, cap)
		}
		peak = max(peak, active[d.AgentID][class])
	}
	var chats, emails int
	for _, m := range active {
		chats += m[switchboard.ClassChat]
		emails += m[switchboard.ClassEmail]
	}
	if chats != concAgents*concCapChat || emails != concAgents*concCapEmail || len(active) != concAgents {
		t.Fatalf("placed %d chats and %d e-mails over %d agents; want %d and %d over %d", chats, emails, len(active), concAgents*concCapChat, concAgents*concCapEmail, concAgents)
	}
	// The conversations table agrees with the events.
	counts, err := db.ActiveCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id, m := range active {
		if counts[id][switchboard.ClassChat] != m[switchboard.ClassChat] || counts[id][switchboard.ClassEmail] != m[switchboard.ClassEmail] {
			t.Fatalf("agent %s: table says %v, events say %v", id, counts[id], m)
		}
	}
	ws, err := db.WaitingConversations(ctx, nil, 5000)
	if err != nil || len(ws) != concChats+concEmails-chats-emails {
		t.Fatalf("waiting = %d, %v; want %d", len(ws), err, concChats+concEmails-chats-emails)
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// work runs passes until three in a row assign nothing.
func work(ctx context.Context, d *dispatch.Dispatcher) (int, error) {
	total, idle := 0, 0
	for idle < 3 {
		a, _, err := d.RouteOnce(ctx)
		if err != nil {
			return total, err
		}
		total += a
		if a == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return total, nil
}

func TestConcurrentWorkersSQLite(t *testing.T) {
	svc := inboxtest.Open(t, "sqlite", inbox.Config{})
	db := svc.Store(t)
	convs := seedConcurrency(t, db)
	var wg sync.WaitGroup
	totals := make([]int, 4)
	errs := make([]error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			totals[w], errs[w] = work(context.Background(), &dispatch.Dispatcher{Inbox: svc, Batch: 200})
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	t.Logf("assignments per worker: %v", totals)
	checkReplay(t, db, convs)
}

const workerEnv = "SWITCHBOARD_DISPATCH_WORKER_URL"

// TestHelperWorker is a router worker in its own process, started by
// TestConcurrentWorkersPostgres; run directly it does nothing.
func TestHelperWorker(t *testing.T) {
	url := os.Getenv(workerEnv)
	if url == "" {
		return
	}
	ctx := context.Background()
	svc, err := inbox.Open(ctx, inbox.Config{DatabaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	n, err := work(ctx, &dispatch.Dispatcher{Inbox: svc, Batch: 200})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("assigned=%d\n", n)
}

func TestConcurrentWorkersPostgres(t *testing.T) {
	url := storetest.URL(t, "postgres")
	db, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	convs := seedConcurrency(t, db)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	outs := make([][]byte, 4)
	errs := make([]error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(exe, "-test.run=^TestHelperWorker$", "-test.count=1")
			cmd.Env = append(os.Environ(), workerEnv+"="+url)
			outs[w], errs[w] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker process %d: %v\n%s", w, err, outs[w])
		}
	}
	t.Logf("4 processes done in %v", time.Since(start))
	for w, out := range outs {
		t.Logf("worker %d: %s", w, firstLine(out))
	}
	checkReplay(t, db, convs)
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
