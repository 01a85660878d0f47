package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-inbox/switchboard/internal/browsertest"
)

// TestAnalyticsDashboardBrowser: the demo's data (its team and past week)
// gives the dashboard non-empty figures in headless Chromium: the first
// response table, the channel × hour heat map with coloured cells,
// resolution, migration and utilisation; its tables sort on a click; an
// agent is refused.
func TestAnalyticsDashboardBrowser(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	m := &Main{Config: Config{Addr: addr, PublicURL: "http://" + addr, DataDir: dir, LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, DatabaseURL: "sqlite:" + filepath.Join(dir, "switchboard.db")}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, _, err := seedDemoData(context.Background(), m.Config.DatabaseURL, m.Logger, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	base := m.URL()

	agent := webSignIn(t, base, "sam@switchboard.demo", demoPassword)
	if resp, _ := agent.get("/analytics"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an agent opening analytics: %d, want 403", resp.StatusCode)
	}

	b := browsertest.Start(t)
	p := b.NewTab(t)
	p.Do(chromedp.Navigate(base + "/login"))
	p.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "sarah@switchboard.demo"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), demoPassword),
	)
	clickOn(t, p, "button", "Sign in")
	p.Wait("the inbox", `location.pathname === '/'`)
	clickOn(t, p, "link", "Analytics")
	p.Wait("the dashboard", `document.body.dataset.page === 'analytics' && !!document.querySelector('svg.heatmap')`)
	coloured := browsertest.Eval[int](p, `Array.from(document.querySelectorAll('svg.heatmap rect')).filter(r => r.getAttribute('fill') !== '#eef1f5').length`)
	channels := browsertest.Eval[int](p, `document.querySelectorAll('svg.heatmap text.heat-channel').length`)
	if coloured < 10 || channels < 4 {
		t.Errorf("the heat map has %d coloured cells over %d channels, want the week's responses", coloured, channels)
	}
	for _, sel := range []string{"#frt-table tbody tr", "#resolution ~ .analytics-pair table tbody tr", "#utilization ~ .analytics-pair table tbody tr"} {
		if n := browsertest.Eval[int](p, `document.querySelectorAll('`+sel+`').length`); n == 0 {
			t.Errorf("no rows for %s", sel)
		}
	}
	if empty := browsertest.Eval[int](p, `document.querySelectorAll('#frt-table td.muted').length`); empty != 0 {
		t.Error("the first-response table says there were no responses")
	}
	// Sorting by the median puts the fastest channel first.
	p.Do(chromedp.Click(chromedp.CSS(`#frt-table th:nth-child(3)`)))
	vals := browsertest.Eval[[]float64](p, `Array.from(document.querySelectorAll('#frt-table tbody tr td:nth-child(3)')).map(td => parseFloat(td.dataset.value))`)
	for i := 1; i < len(vals); i++ {
		if vals[i] < vals[i-1] {
			t.Errorf("after sorting by the median: %v", vals)
			break
		}
	}
	if got := browsertest.Eval[string](p, `document.querySelector('#migration + p').textContent`); !strings.Contains(got, "% of conversations") || strings.HasPrefix(strings.TrimSpace(got), "0%") {
		t.Errorf("migration: %q", got)
	}
	answers := browsertest.Eval[int](p, `Array.from(document.querySelectorAll('#csat-table tbody tr td:nth-child(3)')).reduce((n, td) => n + parseInt(td.dataset.value || '0'), 0)`)
	if answers == 0 {
		t.Error("the satisfaction table shows no answers for the demo's week")
	}
	screenshot(t, p, "analytics.png")
}
