package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// benchResult is what one bench run measured.
type benchResult struct {
	Backend        string  `json:"backend"`
	Duration       float64 `json:"duration_s"`
	Concurrency    int     `json:"concurrency"`
	TargetRate     int     `json:"target_rate"`
	Sent           int64   `json:"sent"`
	Accepted       int64   `json:"accepted"`
	Errors         int64   `json:"errors"`
	Stored         int64   `json:"stored"`
	AcceptRate     float64 `json:"accept_rate_per_s"`
	EndToEndRate   float64 `json:"end_to_end_rate_per_s"`
	HTTPp50        float64 `json:"http_p50_ms"`
	HTTPp99        float64 `json:"http_p99_ms"`
	StoreP50       float64 `json:"accepted_to_stored_p50_ms"`
	StoreP99       float64 `json:"accepted_to_stored_p99_ms"`
	PublishP50     float64 `json:"accepted_to_published_p50_ms"`
	PublishP99     float64 `json:"accepted_to_published_p99_ms"`
	RawCommitRate  float64 `json:"raw_commits_per_s"`
	Waiting        int     `json:"waiting_before"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	RatioToRawRate float64 `json:"end_to_end_over_raw"`
}

// startProfile writes a CPU profile to path until stop is called.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeHeapProfile writes the allocations so far (go tool pprof
// -sample_index=alloc_space shows where they came from).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "list" {
		return runBenchList(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "pages" {
		return runBenchPages(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", "", "postgres://... to bench PostgreSQL; default the embedded SQLite")
	redisURL := fs.String("redis-url", "", "redis://... for the queue and bus (with --database-url)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	concurrency := fs.Int("concurrency", 64, "concurrent HTTP clients")
	rate := fs.Int("rate", 0, "target posts per second in total; 0 sends as fast as the clients can")
	customers := fs.Int("customers", 20000, "distinct simulated customers (repeat customers make up the rest)")
	rawN := fs.Int("raw-commits", 3000, "single-row commits for the raw store limit")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	fs.StringVar(cpuProfile, "profile", "", "the same as -cpuprofile")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the run to this file")
	waitingN := fs.Int("waiting", 0, "conversations waiting for an agent, with nobody online, before the run")
	target := fs.String("url", "", "load a server that runs elsewhere (its base URL) instead of starting one: only the HTTP side is measured")
	serverPID := fs.Int("server-pid", 0, "with --url: the server's process id, to report its peak resident memory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *memProfile != "" {
		defer func() {
			if err := writeHeapProfile(*memProfile); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}()
	}
	if *target != "" {
		return benchRemote(ctx, *target, *serverPID, loadOptions{concurrency: *concurrency, rate: *rate, customers: *customers, duration: *duration}, stdout, stderr)
	}
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// One instance of the real server, on loopback, measured from outside
	// over HTTP. The OnStored hook sees each message once it is stored; a
	// subscriber to the bus sees its message.created event, which is where
	// accepted-to-published latency ends.
	var mu sync.Mutex
	var publishLat, storeLat []time.Duration
	var lastStored, lastPublished time.Time
	var stored atomic.Int64
	acceptedAt := map[string]time.Time{}  // stored, event not seen yet
	publishedAt := map[string]time.Time{} // event seen, not yet known stored
	published := func(at, pub time.Time) {
		publishLat = append(publishLat, pub.Sub(at))
		if pub.After(lastPublished) {
			lastPublished = pub
		}
	}
	m := &Main{Config: Config{
		Addr: "127.0.0.1:0", DataDir: dir, DatabaseURL: *dbURL, RedisURL: *redisURL, LogLevel: "warn", LogFormat: "text",
		IngestBatch: 512, OutboxMaxAttempts: 8, FormRatePerMinute: 0, RedisPrefix: fmt.Sprintf("switchboard-bench:%d:", time.Now().UnixNano()),
		// A load test measures the Redis it is given; Open warns if that
		// one would lose acknowledged messages.
		RedisAllowVolatile: true,
	}}
	m.Logger = NewLogger(m.Config, stderr)
	m.OnStored = func(items []switchboard.Inbound, res []switchboard.IngestResult) {
		now := time.Now()
		mu.Lock()
		for i, r := range res {
			if r.Stored() {
				storeLat = append(storeLat, now.Sub(items[i].AcceptedAt))
				if pub, ok := publishedAt[r.MessageID]; ok {
					delete(publishedAt, r.MessageID)
					published(items[i].AcceptedAt, pub)
				} else {
					acceptedAt[r.MessageID] = items[i].AcceptedAt
				}
				stored.Add(1)
			}
		}
		lastStored = now
		mu.Unlock()
	}
	if err := m.Open(ctx); err != nil {
		return err
	}
	defer m.Close()
	evs, err := m.Bus.Subscribe(ctx)
	if err != nil {
		return err
	}
	go func() {
		for ev := range evs {
			if ev.Type != switchboard.BusMessageCreated {
				continue
			}
			now := time.Now()
			var msg struct {
				ID string `json:"id"`
			}
			json.Unmarshal(ev.Data, &msg)
			mu.Lock()
			if at, ok := acceptedAt[msg.ID]; ok {
				delete(acceptedAt, msg.ID)
				published(at, now)
			} else {
				publishedAt[msg.ID] = now
			}
			mu.Unlock()
		}
	}()
	res := benchResult{Backend: m.Inbox.Dialect(), Concurrency: *concurrency, TargetRate: *rate, Waiting: *waitingN}
	if *waitingN > 0 {
		if err := seedWaiting(ctx, m, *waitingN, stderr); err != nil {
			return err
		}
	}
	if *redisURL != "" {
		res.Backend += "+redis"
	}
	fmt.Fprintf(stderr, "bench: %s, %d clients for %s at %s\n", res.Backend, *concurrency, *duration, rateText(*rate))

	start := time.Now()
	load := sendLoad(ctx, m.URL(), loadOptions{concurrency: *concurrency, rate: *rate, customers: *customers, duration: *duration})
	sendTime := load.elapsed
	sent, accepted, failed := load.sent, load.accepted, load.failed

	// Wait for the pipeline to store, and the inbox to announce,
	// everything that was accepted.
	drain := time.Now().Add(2 * time.Minute)
	announced := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return int64(len(publishLat))
	}
	for (stored.Load() < accepted || announced() < stored.Load()) && time.Now().Before(drain) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	last := lastStored
	if lastPublished.After(last) {
		last = lastPublished
	}
	endToEnd := last.Sub(start)
	pub, sto := slices.Clone(publishLat), slices.Clone(storeLat)
	mu.Unlock()
	if int64(len(pub)) < stored.Load() {
		return fmt.Errorf("bench: %d of %d stored messages were announced on the bus within 2 minutes", len(pub), stored.Load())
	}
	if stored.Load() < accepted {
		st := m.Inbox.IngestStats()
		fmt.Fprintf(stderr, "bench: ingest batches: %d fast, %d replanned, %d one by one\n", st.FastBatches.Load(), st.Replans.Load(), st.SlowBatches.Load())
		return fmt.Errorf("bench: only %d of %d accepted messages were stored within 2 minutes", stored.Load(), accepted)
	}

	all := load.latencies
	res.Duration = sendTime.Seconds()
	res.Sent, res.Accepted, res.Errors, res.Stored = sent, accepted, failed, stored.Load()
	res.AcceptRate = float64(res.Accepted) / sendTime.Seconds()
	res.EndToEndRate = float64(res.Stored) / endToEnd.Seconds()
	res.HTTPp50, res.HTTPp99 = quantileMS(all, .50), quantileMS(all, .99)
	res.PublishP50, res.PublishP99 = quantileMS(pub, .50), quantileMS(pub, .99)
	res.StoreP50, res.StoreP99 = quantileMS(sto, .50), quantileMS(sto, .99)

	fmt.Fprintf(stderr, "bench: measuring the raw store limit with %d single-row commits\n", *rawN)
	if res.RawCommitRate, err = m.Inbox.RawCommitRate(ctx, *rawN); err != nil {
		return err
	}
	res.RatioToRawRate = res.EndToEndRate / res.RawCommitRate
	res.PeakRSSMB = peakRSSMB()
	st := m.Inbox.IngestStats()
	fmt.Fprintf(stderr, "bench: ingest batches: %d fast, %d replanned, %d one by one\n", st.FastBatches.Load(), st.Replans.Load(), st.SlowBatches.Load())

	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, `backend            %s
offered load       %s, %d clients, %.1fs
posts              %d sent, %d accepted (2xx), %d errors, %d stored
accepted rate      %.0f/s
end-to-end rate    %.0f/s (accepted, stored and published)
request -> 2xx     p50 %.2f ms   p99 %.2f ms
2xx -> stored      p50 %.2f ms   p99 %.2f ms
2xx -> published   p50 %.2f ms   p99 %.2f ms
raw store limit    %.0f single-row commits/s (same store, same settings)
ratio              %.2fx the raw limit
waiting before     %d conversations, nobody online
peak memory        %.0f MB resident (the whole process: server and load generator)
`, res.Backend, rateText(*rate), res.Concurrency, res.Duration, res.Sent, res.Accepted, res.Errors, res.Stored,
		res.AcceptRate, res.EndToEndRate, res.HTTPp50, res.HTTPp99, res.StoreP50, res.StoreP99, res.PublishP50, res.PublishP99, res.RawCommitRate, res.RatioToRawRate,
		res.Waiting, res.PeakRSSMB)
	if res.Errors > 0 {
		return errors.New("bench: some posts failed")
	}
	return nil
}

// loadOptions shape the posts a bench sends.
type loadOptions struct {
	concurrency, rate, customers int
	duration                     time.Duration
}

// loadResult is what the sending side saw.
type loadResult struct {
	sent, accepted, failed int64
	latencies              []time.Duration // request to 2xx, of the accepted posts
	elapsed                time.Duration
}

// sendLoad posts contact-form messages to base for o.duration from
// o.concurrency clients, at o.rate in all (0: as fast as they can).
func sendLoad(ctx context.Context, base string, o loadOptions) loadResult {
	url := base + "/forms/contact"
	transport := &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	var sent, accepted, failed atomic.Int64
	lat := make([][]time.Duration, o.concurrency)
	sendCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for i := 0; ; i++ {
				if sendCtx.Err() != nil {
					return
				}
				if o.rate > 0 {
					// Open-loop pacing: client w sends its i-th post at a
					// fixed time, whatever happened to the ones before, so
					// a slow answer does not lower the offered load.
					due := start.Add(time.Duration(float64(i*o.concurrency+w) / float64(o.rate) * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-sendCtx.Done():
							return
						case <-time.After(d):
						}
					}
				}
				body, _ := json.Marshal(map[string]string{
					"name": "Bench Customer", "email": fmt.Sprintf("c%d@bench.example", rng.IntN(o.customers)),
					"subject": "Order status", "message": fmt.Sprintf("bench message %d-%d: where is my order?", w, i),
				})
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(context.WithoutCancel(sendCtx), http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					accepted.Add(1)
					lat[w] = append(lat[w], time.Since(t0))
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r := loadResult{sent: sent.Load(), accepted: accepted.Load(), failed: failed.Load(), elapsed: time.Since(start)}
	for _, l := range lat {
		r.latencies = append(r.latencies, l...)
	}
	return r
}

// benchRemote loads a server another process runs (`switchboard serve`),
// so that its own memory can be read without the load generator's: the
// HTTP side's figures, and the server's peak resident memory from
// /proc/PID/status (VmHWM) when pid is given.
func benchRemote(ctx context.Context, base string, pid int, o loadOptions, stdout, stderr io.Writer) error {
	fmt.Fprintf(stderr, "bench: %s, %d clients for %s at %s\n", base, o.concurrency, o.duration, rateText(o.rate))
	r := sendLoad(ctx, base, o)
	fmt.Fprintf(stdout, `target             %s
offered load       %s, %d clients, %.1fs
posts              %d sent, %d accepted (2xx), %d errors
accepted rate      %.0f/s
request -> 2xx     p50 %.2f ms   p99 %.2f ms
`, base, rateText(o.rate), o.concurrency, r.elapsed.Seconds(), r.sent, r.accepted, r.failed,
		float64(r.accepted)/r.elapsed.Seconds(), quantileMS(r.latencies, .50), quantileMS(r.latencies, .99))
	if pid > 0 {
		peak, err := processPeakRSSMB(pid)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "server peak memory %.0f MB resident (process %d, VmHWM)\n", peak, pid)
	}
	if r.failed > 0 {
		return errors.New("bench: some posts failed")
	}
	return nil
}

// processPeakRSSMB reads another process's peak resident memory.
func processPeakRSSMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: the server's memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f kB", &kb); err != nil {
				return 0, fmt.Errorf("bench: VmHWM %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("bench: no VmHWM in /proc/%d/status", pid)
}

// seedWaiting stores n conversations from distinct customers, with no
// agent online, and has the router decide them all once, as a long queue
// in a quiet evening stands.
func seedWaiting(ctx context.Context, m *Main, n int, stderr io.Writer) error {
	start := time.Now()
	const batch = 1000
	for done := 0; done < n; done += batch {
		items := make([]switchboard.Inbound, 0, batch)
		for i := done; i < min(done+batch, n); i++ {
			items = append(items, switchboard.Inbound{
				Channel: switchboard.ChannelWebform, ProviderID: fmt.Sprint("waiting-", i), ContentType: switchboard.ContentText,
				Text:       "a question nobody has answered yet",
				Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: fmt.Sprintf("waiting%d@bench.example", i)}},
			})
		}
		if _, err := m.Inbox.Ingest(ctx, items); err != nil {
			return fmt.Errorf("bench: seed the queue: %w", err)
		}
	}
	if m.Dispatcher != nil {
		if _, _, err := m.Dispatcher.RouteOnce(ctx); err != nil {
			return fmt.Errorf("bench: route the queue: %w", err)
		}
	}
	// Statistics as a database that has run a while has them (the
	// planners choose by them).
	if err := m.Inbox.Analyze(ctx); err != nil {
		return err
	}
	w, err := m.Inbox.WaitingCount(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: %d conversations waiting (seeded in %s)\n", w, time.Since(start).Round(time.Millisecond))
	return nil
}

// peakRSSMB is the process's peak resident memory (getrusage's maxrss,
// KiB on Linux).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

func rateText(rate int) string {
	if rate == 0 {
		return "full speed"
	}
	return fmt.Sprintf("%d/s", rate)
}

func quantileMS(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000
}
