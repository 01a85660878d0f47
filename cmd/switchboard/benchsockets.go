package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// socketsResult is what one `bench sockets` run measured.
type socketsResult struct {
	Backend   string  `json:"backend"`
	Instances int     `json:"instances"`
	Sockets   int     `json:"sockets"`
	Rounds    int     `json:"rounds"`
	Delivered int64   `json:"delivered"`
	Missing   int64   `json:"missing"`
	SameP50   float64 `json:"same_instance_p50_ms"`
	SameP99   float64 `json:"same_instance_p99_ms"`
	SameMax   float64 `json:"same_instance_max_ms"`
	OtherP50  float64 `json:"other_instance_p50_ms,omitempty"`
	OtherP99  float64 `json:"other_instance_p99_ms,omitempty"`
	OtherMax  float64 `json:"other_instance_max_ms,omitempty"`
	// Per idle socket on the first instance: growth of the resident set,
	// and of the Go heap and stacks, divided by its sockets.
	RSSPerSocket  float64 `json:"rss_bytes_per_socket"`
	HeapPerSocket float64 `json:"heap_and_stack_bytes_per_socket"`
	// CPUPerDelivery is the first instance's processor time during the
	// fan-out (user and system), divided by the events its sockets got.
	CPUPerDelivery float64 `json:"server_cpu_us_per_delivery"`
}

// runBenchSockets measures the agents' socket: it starts one or two
// `switchboard serve` processes (this binary), opens idle agent sockets
// spread over them from this process, and measures what the servers'
// memory grew by; then one agent toggles viewing a conversation, each
// toggle a presence event fanned out to every socket, and every socket
// records how long after the event's creation ("at") it arrived.
func runBenchSockets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench sockets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("sockets", 1000, "agent sockets to open")
	instances := fs.Int("instances", 1, "server processes (2 needs --database-url and --redis-url)")
	agents := fs.Int("agents", 100, "distinct agents the sockets sign in as")
	rounds := fs.Int("rounds", 40, "presence events to fan out")
	interval := fs.Duration("interval", 250*time.Millisecond, "time between events")
	dbURL := fs.String("database-url", "", "postgres://...; default a fresh embedded SQLite")
	redisURL := fs.String("redis-url", "", "redis://... for the bus and presence")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	perRound := fs.Bool("per-round", false, "print each event's p50 and slowest delivery")
	measureMemory := fs.Bool("memory", true, "measure memory per idle socket (waits for the server's garbage collections: up to 4 minutes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *instances < 1 || *instances > 1 && (*dbURL == "" || *redisURL == "") {
		return errors.New("bench sockets: two or more instances share PostgreSQL and Redis: give --database-url and --redis-url")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "switchboard-bench-sockets-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *dbURL == "" {
		*dbURL = "sqlite:" + filepath.Join(dir, "switchboard.db")
	}
	var r [8]byte
	rand.Read(r[:])
	run := hex.EncodeToString(r[:])

	tokens, err := benchAgents(ctx, *dbURL, run, *agents)
	if err != nil {
		return err
	}
	metricsToken := "bench-" + run
	var servers []*benchServer
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for i := range *instances {
		env := []string{
			"SWITCHBOARD_DATA_DIR=" + filepath.Join(dir, fmt.Sprint("instance", i)),
			"SWITCHBOARD_DATABASE_URL=" + *dbURL, "SWITCHBOARD_METRICS_TOKEN=" + metricsToken,
			"SWITCHBOARD_BLOB_URL=file:" + filepath.Join(dir, "files"), "SWITCHBOARD_BLOB_KEY=" + run + run,
			"SWITCHBOARD_LOG_LEVEL=warn", "SWITCHBOARD_ROUTING_OFF=true", "SWITCHBOARD_FORM_RATE_LIMIT=0",
		}
		if *redisURL != "" {
			// A load test measures the Redis it is given (see bench).
			env = append(env, "SWITCHBOARD_REDIS_URL="+*redisURL, "SWITCHBOARD_REDIS_PREFIX=switchboard-bench:"+run+":",
				"SWITCHBOARD_REDIS_ALLOW_VOLATILE=true")
		}
		s, err := startBenchServer(ctx, exe, env, metricsToken, stderr)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	conv, err := benchConversation(ctx, servers[0].url, tokens[0], run)
	if err != nil {
		return err
	}
	backend := "sqlite"
	if !strings.HasPrefix(*dbURL, "sqlite:") {
		backend = "postgres"
	}
	if *redisURL != "" {
		backend += "+redis"
	}
	res := socketsResult{Backend: backend, Instances: *instances, Sockets: *n, Rounds: *rounds}
	fmt.Fprintf(stderr, "bench sockets: %s, %d instance(s), %d sockets as %d agents\n", backend, *instances, *n, *agents)

	// Idle memory: what the first instance grows by for its share, each
	// figure read after a garbage collection (Go forces one every two
	// minutes at the latest), so that garbage is not counted as sockets.
	var before serverMemory
	if *measureMemory {
		if before, err = servers[0].memoryAfterGC(ctx, time.Now(), stderr); err != nil {
			return err
		}
	}
	socks := make([]*benchSocket, *n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range socks {
		g.Go(func() error {
			s, err := dialBenchSocket(gctx, servers[i%len(servers)].url, tokens[i%len(tokens)], *rounds)
			socks[i] = s
			return err
		})
	}
	err = g.Wait()
	defer func() {
		for _, s := range socks {
			if s != nil {
				s.conn.CloseNow()
			}
		}
	}()
	if err != nil {
		return fmt.Errorf("bench sockets: connect: %w", err)
	}
	// A dial returns when the client reads the 101; the server registers
	// the socket just after. Wait until every socket is registered.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		total := 0
		for _, srv := range servers {
			m, err := srv.memory(ctx)
			if err != nil {
				return err
			}
			total += m.sockets
		}
		if total == *n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench sockets: the servers report %d sockets, want %d", total, *n)
		}
	}
	if *measureMemory {
		after, err := servers[0].memoryAfterGC(ctx, time.Now(), stderr)
		if err != nil {
			return err
		}
		onFirst := (*n + len(servers) - 1) / len(servers)
		if after.sockets != onFirst {
			return fmt.Errorf("bench sockets: the first instance reports %d sockets, want %d", after.sockets, onFirst)
		}
		res.RSSPerSocket = float64(after.rss-before.rss) / float64(onFirst)
		res.HeapPerSocket = float64(after.heap+after.stack-before.heap-before.stack) / float64(onFirst)
	}

	// Fan-out: the first socket (on the first instance) toggles viewing.
	cpu0, err := servers[0].cpu()
	if err != nil {
		return err
	}
	driver := socks[0]
	for i := range *rounds {
		target := conv
		if i%2 == 1 {
			target = ""
		}
		b, _ := json.Marshal(map[string]string{"type": "viewing", "conversation_id": target})
		if err := driver.conn.Write(ctx, websocket.MessageText, b); err != nil {
			return fmt.Errorf("bench sockets: send viewing: %w", err)
		}
		time.Sleep(*interval)
	}
	time.Sleep(2 * time.Second) // stragglers
	cpu1, err := servers[0].cpu()
	if err != nil {
		return err
	}
	onFirst := (*n + len(servers) - 1) / len(servers)
	res.CPUPerDelivery = float64((cpu1 - cpu0).Microseconds()) / float64(*rounds*onFirst)
	if *perRound {
		for r := range *rounds {
			var d []time.Duration
			for _, s := range socks {
				if l := s.latencies(); r < len(l) {
					d = append(d, l[r])
				}
			}
			fmt.Fprintf(stderr, "event %2d: p50 %.1f ms, slowest %.1f ms\n", r, quantileMS(d, .5), quantileMS(d, 1))
		}
	}
	var same, other []time.Duration
	var unparsed int64
	for i, s := range socks {
		unparsed += s.bad.Load()
		lat := s.latencies()
		res.Delivered += int64(len(lat))
		res.Missing += int64(*rounds - len(lat))
		if i%len(servers) == 0 {
			same = append(same, lat...)
		} else {
			other = append(other, lat...)
		}
	}
	res.SameP50, res.SameP99, res.SameMax = quantileMS(same, .50), quantileMS(same, .99), quantileMS(same, 1)
	if len(other) > 0 {
		res.OtherP50, res.OtherP99, res.OtherMax = quantileMS(other, .50), quantileMS(other, .99), quantileMS(other, 1)
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "backend            %s, %d instance(s)\nsockets            %d, %d events each\ndelivered          %d (%d missing)\n",
			res.Backend, res.Instances, res.Sockets, res.Rounds, res.Delivered, res.Missing)
		fmt.Fprintf(stdout, "event -> socket    p50 %.2f ms   p99 %.2f ms   max %.2f ms (sockets on the publishing instance)\n", res.SameP50, res.SameP99, res.SameMax)
		if len(other) > 0 {
			fmt.Fprintf(stdout, "event -> socket    p50 %.2f ms   p99 %.2f ms   max %.2f ms (sockets on the other instance, through Redis)\n", res.OtherP50, res.OtherP99, res.OtherMax)
		}
		fmt.Fprintf(stdout, "server CPU         %.1f µs per event delivered to a socket (first instance)\n", res.CPUPerDelivery)
		if *measureMemory {
			fmt.Fprintf(stdout, "per idle socket    %.1f KB resident, %.1f KB Go heap and stacks (first instance)\n", res.RSSPerSocket/1024, res.HeapPerSocket/1024)
		}
	}
	if unparsed > 0 {
		return fmt.Errorf("bench sockets: %d presence frames without a readable \"at\"", unparsed)
	}
	if res.Missing > 0 {
		return fmt.Errorf("bench sockets: %d events never reached their socket", res.Missing)
	}
	return nil
}

// benchAgents adds count agents for this run and returns their tokens.
func benchAgents(ctx context.Context, dbURL, run string, count int) ([]string, error) {
	svc, err := inbox.Open(ctx, inbox.Config{DatabaseURL: dbURL})
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	tokens := make([]string, count)
	for i := range tokens {
		_, tok, err := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{
			Name: fmt.Sprintf("Bench Agent %d", i), Email: fmt.Sprintf("agent%d-%s@bench.example", i, run),
		})
		if err != nil {
			return nil, fmt.Errorf("bench sockets: add agent: %w", err)
		}
		tokens[i] = tok
	}
	return tokens, nil
}

// benchConversation posts one contact form and returns its conversation's
// id once it is stored.
func benchConversation(ctx context.Context, base, token, run string) (string, error) {
	resp, err := http.PostForm(base+"/forms/contact", url.Values{"email": {"visitor-" + run + "@bench.example"}, "message": {"Hello"}})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/conversations", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		var list struct {
			Conversations []struct {
				ID string `json:"id"`
			} `json:"conversations"`
		}
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list.Conversations) > 0 {
			return list.Conversations[0].ID, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("bench sockets: the conversation was not stored within 30s")
}

// benchServer is one `switchboard serve` child process.
type benchServer struct {
	cmd          *exec.Cmd
	url, metrics string
	done         chan struct{}
}

func startBenchServer(ctx context.Context, exe string, env []string, metricsToken string, stderr io.Writer) (*benchServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close() // the child listens on it; a race with another process is unlikely and fails loudly
	cmd := exec.CommandContext(ctx, exe, "serve")
	cmd.Env = append(os.Environ(), append(env, "SWITCHBOARD_ADDR="+addr, "SWITCHBOARD_PUBLIC_URL=http://"+addr)...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench sockets: start server: %w", err)
	}
	s := &benchServer{cmd: cmd, url: "http://" + addr, metrics: metricsToken, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, errors.New("bench sockets: the server exited at start (its log is above)")
		default:
		}
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return nil, errors.New("bench sockets: the server did not answer /healthz within 30s")
}

func (s *benchServer) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// cpu is the processor time the server has used, from /proc.
func (s *benchServer) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("bench sockets: processor time (Linux only): %w", err)
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th, in clock ticks (USER_HZ, 100).
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("bench sockets: unexpected /proc/%d/stat", s.cmd.Process.Pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

type serverMemory struct {
	rss, heap, stack int64
	sockets          int
	lastGC           time.Time
}

// memoryAfterGC waits for the server's first garbage collection after t
// and then reads its memory.
func (s *benchServer) memoryAfterGC(ctx context.Context, t time.Time, stderr io.Writer) (serverMemory, error) {
	fmt.Fprintln(stderr, "bench sockets: waiting for the server's next garbage collection (at most about two minutes)")
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		m, err := s.memory(ctx)
		if err != nil || m.lastGC.After(t) {
			return m, err
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return serverMemory{}, errors.New("bench sockets: no garbage collection within 3 minutes")
}

// memory reads the server's resident set from /proc and its Go heap,
// stacks and socket count from /metrics.
func (s *benchServer) memory(ctx context.Context) (serverMemory, error) {
	var m serverMemory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return m, fmt.Errorf("bench sockets: resident memory (Linux only): %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			m.rss = kb << 10
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.metrics)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		f, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heap = int64(f)
		case "go_memstats_stack_inuse_bytes":
			m.stack = int64(f)
		case "switchboard_realtime_sockets":
			m.sockets = int(f)
		case "go_memstats_last_gc_time_seconds":
			m.lastGC = time.Unix(0, int64(f*1e9))
		}
	}
	return m, sc.Err()
}

// benchSocket is one agent's socket; its reader records, for each presence
// event, how long after the event's "at" it arrived.
type benchSocket struct {
	conn *websocket.Conn
	mu   sync.Mutex
	lat  []time.Duration
	bad  atomic.Int64
}

var atField = []byte(`"at":"`)

func dialBenchSocket(ctx context.Context, base, token string, rounds int) (*benchSocket, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/realtime"
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		return nil, err
	}
	s := &benchSocket{conn: conn, lat: make([]time.Duration, 0, rounds)}
	go func() {
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			now := time.Now()
			if !bytes.Contains(b, []byte(`"type":"presence"`)) {
				continue
			}
			// The frame's top-level "at" comes before its data.
			i := bytes.Index(b, atField)
			j := -1
			if i >= 0 {
				j = bytes.IndexByte(b[i+len(atField):], '"')
			}
			if j < 0 {
				s.bad.Add(1)
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, string(b[i+len(atField):i+len(atField)+j]))
			if err != nil {
				s.bad.Add(1)
				continue
			}
			s.mu.Lock()
			s.lat = append(s.lat, now.Sub(at))
			s.mu.Unlock()
		}
	}()
	return s, nil
}

func (s *benchSocket) latencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lat)
}
