package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-inbox/switchboard"
)

// The demo's live chat: a site whose origin is the demo server itself, a
// shop page that embeds the widget, and a simulated visitor chatting
// through the real visitor API (POST /chat/sessions, GET /chat/ws).

// demoShop serves GET /demo/shop once the site exists.
type demoShop struct{ key atomic.Value } // string

var demoShopPage = template.Must(template.New("shop").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme Parcels: demo shop</title>
<style>body{font-family:system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em;color:#222}
.item{border:1px solid #ddd;border-radius:8px;padding:1em;margin:1em 0}</style></head>
<body>
<h1>Acme Parcels</h1>
<p>A demo shop page. The chat widget in the corner is Switchboard's live chat
(site key <code>{{.Key}}</code>); agents answer it from the inbox.</p>
<div class="item"><h2>Sturdy box, large</h2><p>€4.90</p></div>
<div class="item"><h2>Bubble wrap, 10 m</h2><p>€7.50</p></div>
<script src="/widget.js" data-site="{{.Key}}" async></script>
</body></html>
`))

func (d *demoShop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, _ := d.key.Load().(string)
	if key == "" {
		http.Error(w, "the demo site is not ready yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	demoShopPage.Execute(w, struct{ Key string }{key})
}

// seedDemoSite adds the demo's live-chat site, on the demo server's own
// origin where the shop page is served.
func seedDemoSite(ctx context.Context, m *Main, shop *demoShop) (string, error) {
	site, err := m.Inbox.AddSite(ctx, switchboard.System, switchboard.Site{Name: "Acme Parcels (demo shop)", Origins: []string{m.URL()}})
	if err != nil {
		return "", fmt.Errorf("seed live-chat site: %w", err)
	}
	shop.key.Store(site.Key)
	return site.Key, nil
}

var demoChatLines = []struct{ Ask, Answer string }{
	{"Hi! Do you ship to Norway?", "Yes, we ship to Norway: 3-5 working days."},
	{"My parcel says delivered but it isn't here.", "Sorry about that! I've asked the carrier for the photo of the drop-off."},
	{"Can I change the size of the box I ordered?", "Of course: I've switched it to the large box for you."},
	{"Is the bubble wrap recyclable?", "It is: LDPE 4, accepted at most recycling points."},
}

// simulateChat plays a visitor on the shop page every few seconds: a
// session, the socket, a question; an agent answers it through the agent
// API on livechat, and the visitor reads it and leaves.
func simulateChat(ctx context.Context, log *slog.Logger, base, key string, agents []demoAgent, every time.Duration) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(float64(4*every) * (0.5 + rng.Float64()))):
		}
		c := demoCustomers[rng.IntN(len(demoCustomers))]
		line := demoChatLines[rng.IntN(len(demoChatLines))]
		var agent demoAgent
		if len(agents) > 0 {
			agent = agents[rng.IntN(len(agents))]
		}
		if err := demoChatOnce(ctx, base, key, c, line.Ask, line.Answer, agent, fmt.Sprint("demo-", n)); err != nil && ctx.Err() == nil {
			log.Warn("demo: live chat", "err", err)
		}
	}
}

func demoChatOnce(ctx context.Context, base, key string, c demoCustomer, ask, answer string, agent demoAgent, clientID string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"site": key, "name": c.Name, "email": strings.ToLower(c.Email)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat/sessions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	var session struct {
		Token string `json:"visitor_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&session)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("session: %d %v", resp.StatusCode, err)
	}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/chat/ws?token="+session.Token,
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {base}}})
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	send := func(v any) error {
		b, _ := json.Marshal(v)
		return conn.Write(ctx, websocket.MessageText, b)
	}
	if err := send(map[string]string{"type": "typing"}); err != nil {
		return err
	}
	if err := send(map[string]string{"type": "message", "client_id": clientID, "text": ask}); err != nil {
		return err
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var f struct {
			Type    string `json:"type"`
			Message struct {
				ID             string `json:"id"`
				ConversationID string `json:"conversation_id"`
				Direction      string `json:"direction"`
				ClientID       string `json:"client_id"`
			} `json:"message"`
		}
		json.Unmarshal(b, &f)
		switch {
		case f.Type == "message" && f.Message.ClientID == clientID && agent.Token != "":
			// Stored: an agent answers on live chat, through the API.
			go demoAnswer(ctx, base, agent, f.Message.ConversationID, answer)
		case f.Type == "message" && f.Message.Direction == "out":
			send(map[string]string{"type": "read", "message_id": f.Message.ID})
			time.Sleep(time.Second)
			conn.Close(websocket.StatusNormalClosure, "bye")
			return nil
		}
	}
}

func demoAnswer(ctx context.Context, base string, a demoAgent, conversationID, text string) {
	time.Sleep(2 * time.Second) // reading and typing
	b, _ := json.Marshal(map[string]string{"text": text, "channel": "livechat"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/conversations/"+conversationID+"/messages", bytes.NewReader(b))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.Token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}
