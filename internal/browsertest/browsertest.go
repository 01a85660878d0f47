// Package browsertest runs a real headless Chromium for tests, driven with
// chromedp. Without Chromium a test fails in CI and is skipped elsewhere
// (testenv.Chromium).
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// Browser is one Chromium process with a fresh profile.
type Browser struct {
	ctx    context.Context // the browser's first tab
	out    syncBuffer      // Chromium's own output
	mu     sync.Mutex
	events []string // the pages' console messages and uncaught exceptions
}

// Start starts Chromium headless with a fresh profile, sized like a laptop
// window, and stops it when the test ends. On a failed test the pages'
// console and Chromium's output are logged.
//
// The flags keep Chromium off the network but for the addresses the test
// gives it: without the background-networking ones it keeps trying
// Google's hosts, and a closed network refuses those connections.
func Start(tb testing.TB) *Browser {
	tb.Helper()
	bin := testenv.Chromium(tb)
	b := &Browser{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.WindowSize(1280, 860),
		chromedp.CombinedOutput(&b.out),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b.ctx = ctx
	tb.Cleanup(func() {
		cancel()
		cancelAlloc()
		if tb.Failed() {
			b.mu.Lock()
			tb.Logf("browser console:\n%s", strings.Join(b.events, "\n"))
			b.mu.Unlock()
			if out := b.out.String(); out != "" {
				tb.Logf("chromium output (last 4 KB):\n%s", out[max(0, len(out)-4096):])
			}
		}
	})
	// Start the process now, so that a broken install fails here (with
	// no timeout on this first call: it would bound the browser's life).
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("start chromium %s: %v\n%s", bin, err, b.out.String())
		}
	case <-time.After(60 * time.Second):
		tb.Fatalf("chromium %s did not start within 60s\n%s", bin, b.out.String())
	}
	b.listen(tb, ctx)
	return b
}

// Context is the browser's first tab.
func (b *Browser) Context() context.Context { return b.ctx }

// NewTab opens another tab in the same browser (same profile, so the same
// localStorage) and closes it when the test ends.
func (b *Browser) NewTab(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatal(err)
	}
	b.listen(tb, ctx)
	return ctx
}

// Console returns the console messages and uncaught exceptions seen so far.
func (b *Browser) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.events...)
}

func (b *Browser) listen(tb testing.TB, ctx context.Context) {
	err := chromedp.Listen(ctx, func(ev any) {
		var line string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				if a.Value != nil {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			line = "exception: " + ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				line += " " + ex.Description
			}
		default:
			return
		}
		b.mu.Lock()
		b.events = append(b.events, line)
		b.mu.Unlock()
	})
	if err != nil {
		tb.Fatal(err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
