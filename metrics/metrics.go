// Package metrics keeps the few counters, gauges and histograms Switchboard
// exports, and writes them in the Prometheus text exposition format. It is
// small enough that a client library would add more than it saves.
package metrics

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds named metrics.
type Registry struct {
	mu      sync.Mutex
	entries map[string]writer
}

type writer interface {
	write(w io.Writer, name string)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{entries: map[string]writer{}} }

func (r *Registry) add(name string, m writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.entries[name]; ok {
		panic("metrics: duplicate metric " + name) // a programming error
	}
	r.entries[name] = m
}

// Write writes every metric, sorted by name.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	entries := r.entries
	r.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		entries[n].write(w, n)
	}
}

// CounterVec is a monotonically increasing count per label value.
type CounterVec struct {
	help, label string
	mu          sync.Mutex
	values      map[string]*atomic.Int64
}

// NewCounterVec registers a counter with one label.
func (r *Registry) NewCounterVec(name, help, label string) *CounterVec {
	c := &CounterVec{help: help, label: label, values: map[string]*atomic.Int64{}}
	r.add(name, c)
	return c
}

// Add adds n to the counter for value.
func (c *CounterVec) Add(value string, n int64) {
	c.mu.Lock()
	v, ok := c.values[value]
	if !ok {
		v = new(atomic.Int64)
		c.values[value] = v
	}
	c.mu.Unlock()
	v.Add(n)
}

// Get returns the count for value.
func (c *CounterVec) Get(value string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.values[value]; ok {
		return v.Load()
	}
	return 0
}

func (c *CounterVec) write(w io.Writer, name string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, c.help, name)
	c.mu.Lock()
	keys := make([]string, 0, len(c.values))
	for k := range c.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s{%s=%s} %d\n", name, c.label, strconv.Quote(k), c.values[k].Load())
	}
	c.mu.Unlock()
}

// CounterVec2 is a monotonically increasing count per pair of label
// values.
type CounterVec2 struct {
	help           string
	label1, label2 string
	mu             sync.Mutex
	values         map[[2]string]*atomic.Int64
}

// NewCounterVec2 registers a counter with two labels.
func (r *Registry) NewCounterVec2(name, help, label1, label2 string) *CounterVec2 {
	c := &CounterVec2{help: help, label1: label1, label2: label2, values: map[[2]string]*atomic.Int64{}}
	r.add(name, c)
	return c
}

// Add adds n to the counter for the values v1 and v2 of the two labels.
func (c *CounterVec2) Add(v1, v2 string, n int64) {
	k := [2]string{v1, v2}
	c.mu.Lock()
	v, ok := c.values[k]
	if !ok {
		v = new(atomic.Int64)
		c.values[k] = v
	}
	c.mu.Unlock()
	v.Add(n)
}

// Get returns the count for v1 and v2.
func (c *CounterVec2) Get(v1, v2 string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.values[[2]string{v1, v2}]; ok {
		return v.Load()
	}
	return 0
}

func (c *CounterVec2) write(w io.Writer, name string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, c.help, name)
	c.mu.Lock()
	keys := make([][2]string, 0, len(c.values))
	for k := range c.values {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "%s{%s=%s,%s=%s} %d\n", name, c.label1, strconv.Quote(k[0]), c.label2, strconv.Quote(k[1]), c.values[k].Load())
	}
	c.mu.Unlock()
}

// GaugeFunc reports a value computed when scraped.
type GaugeFunc struct {
	help string
	fn   func(context.Context) (float64, error)
}

// NewGaugeFunc registers a gauge read from fn at scrape time.
func (r *Registry) NewGaugeFunc(name, help string, fn func(context.Context) (float64, error)) {
	r.add(name, &GaugeFunc{help: help, fn: fn})
}

func (g *GaugeFunc) write(w io.Writer, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := g.fn(ctx)
	if err != nil {
		v = math.NaN()
	}
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, g.help, name, name, formatFloat(v))
}

// Histogram counts observations (in seconds) into fixed buckets.
type Histogram struct {
	help    string
	bounds  []float64
	mu      sync.Mutex
	counts  []uint64 // per bucket, not cumulative; last is +Inf
	sum     float64
	samples uint64
}

// DefaultLatencyBuckets span 100µs to 10s.
var DefaultLatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewHistogram registers a histogram with the given upper bounds.
func (r *Registry) NewHistogram(name, help string, bounds []float64) *Histogram {
	h := &Histogram{help: help, bounds: bounds, counts: make([]uint64, len(bounds)+1)}
	r.add(name, h)
	return h
}

// Observe records d.
func (h *Histogram) Observe(d time.Duration) {
	v := d.Seconds()
	i := sort.SearchFloat64s(h.bounds, v)
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.samples++
	h.mu.Unlock()
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.samples
}

func (h *Histogram) write(w io.Writer, name string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, h.help, name)
	h.mu.Lock()
	defer h.mu.Unlock()
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{le=%q} %d\n", name, formatFloat(b), cum)
	}
	cum += h.counts[len(h.bounds)]
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, cum, name, formatFloat(h.sum), name, h.samples)
}

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'g', -1, 64), ".0")
}

// Switchboard's metrics, in one place so every package reports to the same
// names.
type Metrics struct {
	Registry *Registry
	// Ingested counts messages stored, by channel.
	Ingested *CounterVec
	// Deduplicated counts deliveries dropped as already stored, by channel.
	Deduplicated *CounterVec
	// Accepted counts webhook and form posts made durable, by channel.
	Accepted *CounterVec
	// Rejected counts webhook and form posts refused, by channel and
	// refusal code.
	Rejected *CounterVec2
	// DeadLetters counts inbound entries that could not be stored.
	DeadLetters *CounterVec
	// Outbox counts send outcomes: sent, retry, failed.
	Outbox *CounterVec
	// Processing is the time from a message being accepted to it being
	// stored and published.
	Processing *Histogram
	// Batch is the time one ingest batch takes.
	Batch *Histogram
}

// New registers Switchboard's metrics in a new registry.
func New() *Metrics {
	r := NewRegistry()
	return &Metrics{
		Registry:     r,
		Ingested:     r.NewCounterVec("switchboard_ingested_total", "Inbound messages stored.", "channel"),
		Deduplicated: r.NewCounterVec("switchboard_deduplicated_total", "Inbound deliveries dropped because the provider id was already stored.", "channel"),
		Accepted:     r.NewCounterVec("switchboard_accepted_total", "Inbound messages made durable on the queue.", "channel"),
		Rejected:     r.NewCounterVec2("switchboard_rejected_total", "Inbound requests refused.", "channel", "reason"),
		DeadLetters:  r.NewCounterVec("switchboard_dead_letters_total", "Inbound entries that could not be stored.", "channel"),
		Outbox:       r.NewCounterVec("switchboard_outbox_total", "Outbound send attempts by outcome.", "outcome"),
		Processing:   r.NewHistogram("switchboard_processing_seconds", "Time from a message being accepted to it being stored and published.", DefaultLatencyBuckets),
		Batch:        r.NewHistogram("switchboard_ingest_batch_seconds", "Time to store one ingest batch.", DefaultLatencyBuckets),
	}
}

// RegisterRuntime adds the process's goroutine count and memory in use
// under the names Prometheus's Go client gives them, so that existing
// dashboards and `switchboard bench sockets` can read them.
func (r *Registry) RegisterRuntime() {
	mem := func(field func(*runtime.MemStats) uint64) func(context.Context) (float64, error) {
		return func(context.Context) (float64, error) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms) // a brief stop; scrapes are seconds apart
			return float64(field(&ms)), nil
		}
	}
	r.NewGaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func(context.Context) (float64, error) {
		return float64(runtime.NumGoroutine()), nil
	})
	r.NewGaugeFunc("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", mem(func(ms *runtime.MemStats) uint64 { return ms.HeapInuse }))
	r.NewGaugeFunc("go_memstats_stack_inuse_bytes", "Number of bytes in use by the stack allocator.", mem(func(ms *runtime.MemStats) uint64 { return ms.StackInuse }))
	r.NewGaugeFunc("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", func(context.Context) (float64, error) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.LastGC) / 1e9, nil
	})
}
