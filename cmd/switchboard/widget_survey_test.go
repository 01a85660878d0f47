package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/internal/browsertest"
)

// TestWidgetSurveyRating: after an agent resolves a live chat, the
// survey reaches the visitor's widget with five rating buttons; a click
// records the rating as CSAT, without a message in the conversation and
// without reopening it.
func TestWidgetSurveyRating(t *testing.T) {
	b := browsertest.Start(t)
	shop := newWidgetShop(t)
	addr := freeAddr(t)
	m := &Main{Config: Config{Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, RoutingOff: true, CSATDelay: "0"}}
	m.SurveyPoll = 50 * time.Millisecond
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	site, err := m.Inbox.AddSite(context.Background(), switchboard.System, switchboard.Site{Name: "Shop", Origins: []string{shop.URL}})
	if err != nil {
		t.Fatal(err)
	}
	shop.serve(strings.Replace(m.URL(), "127.0.0.1", "localhost", 1), site.Key)
	_, token := addAgent(t, m, switchboard.Agent{Name: "Sarah", Email: "sarah@team.example", Role: switchboard.RoleSupervisor})
	base := m.URL()

	p := b.NewTab(t)
	p.Do(chromedp.Navigate(shop.URL + "/"))
	p.Wait("the launcher", widgetRoot+`.querySelector('.launcher')`)
	p.Do(chromedp.Click(widgetQ(".launcher")))
	p.Wait("the pre-chat form", `!`+widgetRoot+`.querySelector('form[aria-label="Start a chat"]').hidden`)
	p.Do(chromedp.SendKeys(widgetQ("input[name=name]"), "Vera Visitor"), chromedp.Click(widgetQ(`form[aria-label="Start a chat"] button`)))
	p.Wait("the composer", `!`+widgetRoot+`.querySelector('.compose').hidden`)
	p.Do(chromedp.SendKeys(widgetQ("textarea"), "Can I change my delivery address?"), browsertest.Enter)
	p.Wait("the echo", widgetRoot+`.querySelector('.msg.me') && `+widgetRoot+`.querySelector('.msg.me').dataset.status !== 'sending'`)

	var list struct {
		Conversations []struct{ ID string } `json:"conversations"`
	}
	callAPI(t, base, token, "GET", "/api/v1/conversations?limit=1", nil, &list)
	if len(list.Conversations) != 1 {
		t.Fatalf("conversations: %+v", list)
	}
	conv := list.Conversations[0].ID
	if code := callAPI(t, base, token, "POST", "/api/v1/conversations/"+conv+"/messages", map[string]string{"text": "Yes, done!"}, nil); code != http.StatusAccepted {
		t.Fatalf("reply: %d", code)
	}
	if code := callAPI(t, base, token, "POST", "/api/v1/conversations/"+conv+"/status", map[string]string{"status": "resolved"}, nil); code != http.StatusOK {
		t.Fatalf("resolve: %d", code)
	}
	p.Wait("the survey's rating buttons", widgetRoot+`.querySelectorAll('.rating button').length === 5`)
	if got := browsertest.Eval[string](p, widgetRoot+`.querySelector('.rating').closest('.bubble').textContent`); !strings.HasPrefix(got, inbox.SurveyText) {
		t.Errorf("the survey bubble says %q", got)
	}
	p.Do(chromedp.Click(widgetQ(`.rating button[aria-label="Rate 4 out of 5"]`)))
	p.Wait("the thanks", widgetRoot+`.querySelector('.rating').textContent === 'Thank you for your rating (4/5).'`)

	var a struct {
		Rows []csatRow `json:"rows"`
	}
	wait(t, "the rating recorded", func() bool {
		a.Rows = nil
		callAPI(t, base, token, "GET", "/api/v1/analytics/csat?range=today", nil, &a)
		return len(a.Rows) == 1 && a.Rows[0].Responses == 1
	})
	if r := a.Rows[0]; r.Channel != "livechat" || r.Average == nil || *r.Average != 4 {
		t.Errorf("csat %+v", r)
	}
	var c struct {
		Status   string `json:"status"`
		Messages []struct{ Direction, Text string }
	}
	callAPI(t, base, token, "GET", "/api/v1/conversations/"+conv, nil, &c)
	if c.Status != "resolved" {
		t.Errorf("the conversation is %s after the rating", c.Status)
	}
	for _, msg := range c.Messages {
		if msg.Direction == "in" && msg.Text == "4" {
			t.Errorf("the rating is a message of the conversation")
		}
	}
	if n := browsertest.Eval[int](p, widgetRoot+`.querySelectorAll('.msg.me').length`); n != 1 {
		t.Errorf("the widget shows %d messages of the visitor, want the one question", n)
	}
}
