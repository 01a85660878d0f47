package metrics

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestExposition(t *testing.T) {
	m := New()
	m.Ingested.Add("sms", 2)
	m.Ingested.Add("email", 1)
	m.Rejected.Add("sms", "bad_signature", 2)
	m.Rejected.Add("email", "unauthorized", 1)
	m.Rejected.Add("sms", "bad_signature", 1)
	m.Rejected.Add("sms", "malformed", 1)
	m.Processing.Observe(3 * time.Millisecond)
	m.Processing.Observe(2 * time.Second)
	m.Registry.NewGaugeFunc("switchboard_queue_depth", "Inbound entries not yet stored.", func(context.Context) (float64, error) { return 7, nil })
	m.Registry.NewGaugeFunc("broken", "A gauge whose source fails.", func(context.Context) (float64, error) { return 0, errors.New("down") })
	var b bytes.Buffer
	m.Registry.Write(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE switchboard_ingested_total counter\n",
		`switchboard_ingested_total{channel="email"} 1` + "\n",
		`switchboard_ingested_total{channel="sms"} 2` + "\n",
		"# HELP switchboard_rejected_total Inbound requests refused.\n# TYPE switchboard_rejected_total counter\n" +
			`switchboard_rejected_total{channel="email",reason="unauthorized"} 1` + "\n" +
			`switchboard_rejected_total{channel="sms",reason="bad_signature"} 3` + "\n" +
			`switchboard_rejected_total{channel="sms",reason="malformed"} 1` + "\n",
		"switchboard_queue_depth 7\n",
		"broken NaN\n",
		`switchboard_processing_seconds_bucket{le="0.0025"} 0` + "\n",
		`switchboard_processing_seconds_bucket{le="0.005"} 1` + "\n",
		`switchboard_processing_seconds_bucket{le="2.5"} 2` + "\n",
		`switchboard_processing_seconds_bucket{le="+Inf"} 2` + "\n",
		"switchboard_processing_seconds_count 2\n",
		"switchboard_processing_seconds_sum 2.003\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
	if got := m.Rejected.Get("sms", "bad_signature"); got != 3 || m.Rejected.Get("bad_signature", "sms") != 0 {
		t.Errorf("Rejected.Get = %d", got)
	}
	if strings.Index(out, "broken") > strings.Index(out, "switchboard_") {
		t.Error("metrics are not sorted by name")
	}
}

// TestRuntime: the runtime gauges move with what they measure.
func TestRuntime(t *testing.T) {
	r := NewRegistry()
	r.RegisterRuntime()
	read := func(name string) float64 {
		var b bytes.Buffer
		r.Write(&b)
		for _, line := range strings.Split(b.String(), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return f
			}
		}
		t.Fatalf("no %s in the exposition", name)
		return 0
	}
	// 50 parked goroutines, then none: the gauge goes down by about as
	// many (goroutines of the runtime and the test framework come and go
	// meanwhile, a few at most).
	stop := make(chan struct{})
	var started sync.WaitGroup
	for range 50 {
		started.Add(1)
		go func() { started.Done(); <-stop }()
	}
	started.Wait()
	with := read("go_goroutines")
	if stack := read("go_memstats_stack_inuse_bytes"); stack < 50*2048 {
		t.Errorf("go_memstats_stack_inuse_bytes = %v with 50 parked goroutines", stack)
	}
	close(stop)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		without := read("go_goroutines")
		if with-without >= 45 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("go_goroutines %v with 50 parked goroutines, %v once they ended", with, without)
		}
	}
	if heap := read("go_memstats_heap_inuse_bytes"); heap < 64<<10 {
		t.Errorf("go_memstats_heap_inuse_bytes = %v", heap)
	}
}
