// Package browsertest runs a real headless Chromium for tests, driven with
// chromedp. Without Chromium a test fails in CI and is skipped elsewhere
// (testenv.Chromium).
package browsertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// Browser is one Chromium process with a fresh profile.
type Browser struct {
	ctx    context.Context    // the browser's first tab
	out    testenv.SyncBuffer // Chromium's own output
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
func (b *Browser) NewTab(tb testing.TB) *Tab {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatal(err)
	}
	b.listen(tb, ctx)
	return &Tab{tb: tb, Ctx: ctx}
}

// Enter presses the Enter key in the focused element as a person does:
// chromedp.SendKeys's "\r" also sends a char event that types a new line
// even when the page cancelled the key.
var Enter = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
		}); err != nil {
			return err
		}
	}
	return nil
})

// Tab is one browser tab, with helpers that end the test on an error.
type Tab struct {
	tb  testing.TB
	Ctx context.Context
}

// Do runs the steps, within 20 s.
func (p *Tab) Do(steps ...chromedp.Action[chromedp.Void]) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.tb.Fatal(err)
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its value.
// It runs through the DevTools protocol, so the page's CSP does not apply.
func Eval[T any](p *Tab, expr string) T {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.tb.Fatalf("%s: %v", expr, err)
	}
	return v
}

// Wait evaluates expr until it is true (an exception counts as false), for
// 15 s at most; on a time-out it shows the page's text. (chromedp.Poll
// builds its predicate with new Function, which a strict CSP refuses.)
func (p *Tab) Wait(what, expr string) {
	p.tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.Ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(function(){ try { return (`+expr+`) } catch (e) { return false } })()`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("waited 15s for %s (%s): %v\npage text: %q", what, expr, err, Eval[string](p, `document.body.innerText + ' | widget: ' + (document.querySelector('switchboard-chat')?.shadowRoot?.textContent || '')`))
		}
		time.Sleep(50 * time.Millisecond)
	}
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
