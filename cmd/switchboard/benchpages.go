package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/queue"
	"github.com/switchboard-inbox/switchboard/server"
	"github.com/switchboard-inbox/switchboard/web"
)

// runBenchPages seeds a store with many conversations and messages and
// times the workspace's pages and the list API through the real server,
// as a signed-in browser asks for them: the handler's own time, from the
// request arriving to the last byte written (docs/benchmarks.md).
func runBenchPages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench pages", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nConv := fs.Int("conversations", 100_000, "conversations to seed (one customer each)")
	nMsg := fs.Int("messages", 1_000_000, "messages to seed in all, spread over the conversations")
	dbURL := fs.String("database-url", "", "postgres://... (a fresh database); default SQLite in a temporary directory")
	runs := fs.Int("runs", 300, "timed requests of each page")
	seed := fs.Bool("seed", true, "seed first; -seed=false times the pages on a database seeded before")
	profile := fs.String("profile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile != "" {
		stop, err := startProfile(*profile)
		if err != nil {
			return err
		}
		defer stop()
	}
	url := *dbURL
	dir, err := os.MkdirTemp("", "switchboard-benchpages-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if url == "" {
		url = "sqlite:" + filepath.Join(dir, "switchboard.db")
	}
	db, err := inbox.Open(ctx, inbox.Config{DatabaseURL: url, Bus: bus.NewMemory()})
	if err != nil {
		return err
	}
	defer db.Close()

	start := time.Now()
	if *seed {
		if err := seedPages(ctx, db, *nConv, *nMsg, stderr); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: seeded %d conversations, %d messages in %s\n", db.Dialect(), *nConv, *nMsg, time.Since(start).Round(time.Second))
	}
	if err := db.Analyze(ctx); err != nil {
		return err
	}
	email := fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())
	agent, token, err := db.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Bench Agent", Email: email, Role: switchboard.RoleSupervisor})
	if err != nil {
		return err
	}
	me := agent.Actor()
	recent, _, err := db.Conversations(ctx, me, switchboard.ConversationFilter{Limit: 200})
	if err != nil || len(recent) == 0 {
		return fmt.Errorf("bench pages: no conversations: %v", err)
	}
	for i, c := range recent {
		if i%2 == 0 {
			if _, err := db.Assign(ctx, me, c.ID, agent.ID); err != nil {
				return err
			}
		}
	}
	session, _, err := benchSession(ctx, db, agent.ID, email)
	if err != nil {
		return err
	}

	q, err := queue.OpenSQLite(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		return err
	}
	defer q.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &server.Server{Inbox: db, Queue: q, Logger: logger}
	if srv.Pages, err = web.NewPages(db, logger, nil); err != nil {
		return err
	}
	// The handler's own time: from the request's arrival to its last
	// byte, without the client or the loopback.
	var mu sync.Mutex
	var timings []time.Duration
	inner := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		inner.ServeHTTP(w, r)
		mu.Lock()
		timings = append(timings, time.Since(t0))
		mu.Unlock()
	}))
	defer ts.Close()
	client := ts.Client()

	rng := rand.New(rand.NewPCG(1, 2))
	type page struct {
		name   string
		path   func() string
		cookie bool
	}
	pages := []page{
		{"inbox page, all (50 rows)", func() string { return "/?view=all" }, true},
		{"inbox page, mine", func() string { return "/?view=mine" }, true},
		{"inbox page, waiting", func() string { return "/?view=waiting" }, true},
		{"inbox page, channel=sms", func() string { return "/?view=all&channel=sms" }, true},
		{"conversation page (latest 50 of the timeline)", func() string { return "/conversations/" + recent[rng.IntN(len(recent))].ID }, true},
		{"list API, GET /api/v1/conversations", func() string { return "/api/v1/conversations" }, false},
	}
	fmt.Fprintf(stdout, "%-48s %9s %9s %9s %9s\n", "page", "p50 ms", "p95 ms", "p99 ms", "KB")
	for _, p := range pages {
		mu.Lock()
		timings = timings[:0]
		mu.Unlock()
		size := 0
		for i := 0; i < *runs+10; i++ {
			if i == 10 { // the first requests warm caches and the pool
				mu.Lock()
				timings = timings[:0]
				mu.Unlock()
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+p.path(), nil)
			if p.cookie {
				req.AddCookie(&http.Cookie{Name: server.SessionCookie, Value: session})
			} else {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("bench pages: %s: status %d", p.name, resp.StatusCode)
			}
			size = int(n)
		}
		mu.Lock()
		ds := slices.Clone(timings)
		mu.Unlock()
		slices.Sort(ds)
		fmt.Fprintf(stdout, "%-48s %9.2f %9.2f %9.2f %9.1f\n", p.name, ms(ds[len(ds)/2]), ms(ds[len(ds)*95/100]), ms(ds[len(ds)*99/100]), float64(size)/1024)
	}
	return nil
}

// benchSession gives the bench agent a password and signs it in, as the
// sign-in form would.
func benchSession(ctx context.Context, db *inbox.Service, id, email string) (string, inbox.Session, error) {
	const pw = "bench-password-not-secret"
	if err := db.SetPassword(ctx, switchboard.System, id, pw); err != nil {
		return "", inbox.Session{}, err
	}
	return db.Login(ctx, email, pw, "127.0.0.1")
}

// seedPages stores nMsg messages over nConv customers through the real
// ingest path, in batches, oldest first: each customer writes their
// messages one after another (a batch touches a few customers, as a
// burst of traffic does), on e-mail and on SMS in turn, so timelines span
// two channels.
func seedPages(ctx context.Context, db *inbox.Service, nConv, nMsg int, stderr io.Writer) error {
	const batch = 1000
	start := time.Now()
	body := strings.Repeat("The parcel for order %d has not arrived and the tracking page shows nothing new since Monday. ", 2)
	for done := 0; done < nMsg; done += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		items := make([]switchboard.Inbound, 0, batch)
		per := max(1, nMsg/nConv)
		for i := done; i < min(done+batch, nMsg); i++ {
			c := min(i/per, nConv-1)
			in := switchboard.Inbound{
				ProviderID: fmt.Sprint("seed-", i), ContentType: switchboard.ContentText,
				Text: fmt.Sprintf(body, 100000+c, 100000+c),
			}
			// One customer, two proven identities on two channels: the
			// phone's message names the e-mail too, as a merge would.
			mail := switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: fmt.Sprintf("seed%d@example.com", c)}
			phone := switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: fmt.Sprintf("+1415%07d", c)}
			if i%2 == 0 {
				in.Channel, in.Identities = switchboard.ChannelEmail, []switchboard.IdentityRef{mail, phone}
				in.Subject = fmt.Sprintf("Order %d", 100000+c)
			} else {
				in.Channel, in.Identities = switchboard.ChannelSMS, []switchboard.IdentityRef{phone, mail}
			}
			items = append(items, in)
		}
		if _, err := db.Ingest(ctx, items); err != nil {
			return err
		}
		if done%100_000 == 0 && done > 0 {
			fmt.Fprintf(stderr, "bench pages: seeded %d messages (%.0f/s)\n", done, float64(done)/time.Since(start).Seconds())
		}
	}
	return nil
}
