package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/route"
)

// demoCustomer is one simulated person; a few write often, so the demo
// shows repeat customers landing in their existing conversation.
type demoCustomer struct {
	Name, Email, Phone string
}

var demoCustomers = []demoCustomer{
	{"Ana Souza", "Ana.Souza@example.com", "+14155550101"},
	{"Ben Okafor", "ben.okafor@example.org", ""},
	{"Chloé Martin", "chloe.martin@example.fr", "+33612345678"},
	{"Dmitri Ivanov", "dmitri@example.net", ""},
	{"Elif Yılmaz", "elif.yilmaz@example.com", "+905321234567"},
	{"Farah Haddad", "farah@example.com", ""},
	{"Gustavo Lima", "gustavo.lima@example.com.br", "+5511912345678"},
	{"Hana Sato", "hana.sato@example.jp", ""},
	{"Isaac Cohen", "isaac.cohen@example.com", "+14155550109"},
	{"Julia Novak", "julia.novak@example.cz", ""},
	{"Kwame Mensah", "kwame@example.com", "+14155550111"},
	{"Lena Fischer", "lena.fischer@example.de", ""},
}

var demoTopics = []struct{ Subject, Message string }{
	{"Where is my parcel?", "Hi, my order #%d was due yesterday and tracking hasn't moved since Monday. Can you check?"},
	{"Damaged delivery", "The box for order #%d arrived crushed and the lid is broken. I'd like a replacement."},
	{"Invoice question", "I was charged twice for order #%d. Could you refund the duplicate payment?"},
	{"Change delivery address", "Can I still change the delivery address for order #%d? I'm moving this week."},
	{"Return request", "I'd like to return order #%d, it doesn't fit. How do I get a label?"},
	{"Follow-up", "Any news on my message about order #%d? Thanks!"},
	{"Business account", "We ship about 200 parcels a month (ref #%d). Do you offer volume pricing?"},
}

// The demo's Twilio account, known only to the local stand-in.
const (
	demoTwilioSID   = "AC00000000000000000000000000000000"
	demoTwilioToken = "demo_auth_token_not_a_secret_000"
	demoNumber      = "+14155550100"
)

// The demo's Meta app, known only to the local Graph stand-in.
const (
	demoMetaSecret = "demo_app_secret_not_a_secret"
	demoMetaToken  = "demo_graph_token"
)

// demoPNG is a 1x1 image the simulator sends as MMS media.
var demoPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")

// demoWAV is a short silent WAV file standing in for a voicemail.
var demoWAV = append([]byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"), make([]byte, 16)...)

// leaveVoicemail plays Twilio Voice's part of a voicemail: the signed
// incoming-call webhook, the recording callback (the audio kept by the
// Twilio stand-in, where Switchboard fetches it as from Twilio) and the
// transcription callback.
func leaveVoicemail(ctx context.Context, log *slog.Logger, base string, fakeTwilio *twiliotest.Server, from, said string, n int) {
	callSID := fmt.Sprintf("CA%032x", n)
	recSID, recURL := fakeTwilio.AddRecording(demoWAV)
	post := func(path string, form url.Values) {
		u := base + path
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(twilio.SignatureHeader, twilio.Sign(demoTwilioToken, u, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("demo: voice webhook", "path", path, "err", err)
			}
			return
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			log.Warn("demo: voice webhook refused", "path", path, "status", resp.StatusCode)
		}
	}
	post("/webhooks/twilio/voice", url.Values{"CallSid": {callSID}, "AccountSid": {demoTwilioSID}, "From": {from}, "To": {demoNumber}, "CallStatus": {"ringing"}, "Direction": {"inbound"}})
	post("/webhooks/twilio/recording", url.Values{"CallSid": {callSID}, "AccountSid": {demoTwilioSID}, "RecordingSid": {recSID}, "RecordingStatus": {"completed"},
		"RecordingDuration": {"9"}, "RecordingUrl": {recURL}})
	post("/webhooks/twilio/transcription", url.Values{"CallSid": {callSID}, "AccountSid": {demoTwilioSID}, "RecordingSid": {recSID}, "TranscriptionSid": {"TR" + recSID[2:]},
		"TranscriptionStatus": {"completed"}, "TranscriptionText": {said}, "From": {from}})
}

// resolveAddr turns a ":0" port into a free one, so the public URL can be
// known before the server listens.
func resolveAddr(addr string) (string, error) {
	if !strings.HasSuffix(addr, ":0") {
		return addr, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", env("ADDR", "127.0.0.1:8080"), "listen address; use 127.0.0.1:0 for any free port")
	every := fs.Duration("every", 2*time.Second, "mean time between simulated customer messages")
	keep := fs.Bool("keep", false, "keep the demo's data directory when it stops")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "switchboard-demo-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	// Providers sign webhooks against our public URL, so the port must be
	// known before the server starts.
	listenAddr, err := resolveAddr(*addr)
	if err != nil {
		return err
	}
	// A local stand-in for Twilio, over TLS as Twilio is: it receives our
	// SMS replies, sends signed delivery reports back, and serves the
	// simulator's MMS media.
	fakeTwilio := twiliotest.New(demoTwilioSID, demoTwilioToken, twiliotest.WithCallbackDelay(time.Second))
	twilioTS := httptest.NewTLSServer(fakeTwilio.Handler())
	fakeTwilio.SetBaseURL(twilioTS.URL)
	defer twilioTS.Close()
	defer fakeTwilio.Close()

	// And one for Meta's Graph API: WhatsApp, Messenger and Instagram.
	fakeGraph := metatest.New(demoMetaSecret, demoMetaToken, metatest.WithWebhook("http://"+listenAddr+"/webhooks/meta"), metatest.WithStatusDelay(time.Second))
	graphTS := httptest.NewServer(fakeGraph.Handler())
	fakeGraph.SetBaseURL(graphTS.URL)
	defer graphTS.Close()
	defer fakeGraph.Close()

	// And one for the mail relay, with customers who answer our mail.
	logger := NewLogger(Config{LogLevel: "info", LogFormat: "text"}, stderr)
	demoMail, err := startDemoMail(ctx, logger, "http://"+listenAddr)
	if err != nil {
		return err
	}
	defer demoMail.Close()

	m := &Main{Config: Config{
		Addr: listenAddr, PublicURL: "http://" + listenAddr, DataDir: dir, ReopenWindow: 7 * 24 * time.Hour, LogLevel: "info", LogFormat: "text",
		IngestBatch: 256, OutboxMaxAttempts: 8, ShutdownTimeout: 5 * time.Second,
		// The simulator posts from this machine: a per-address limit
		// would throttle it.
		FormRatePerMinute: 0,
		TwilioAccountSID:  demoTwilioSID, TwilioAuthToken: demoTwilioToken, TwilioAPIURL: twilioTS.URL, TwilioFrom: demoNumber,
		SMSPricePerSegment: 0.0079, PhoneRegion: "US",
		MetaAppSecret: demoMetaSecret, MetaVerifyToken: "demo-verify", MetaAccessToken: demoMetaToken, GraphAPIURL: graphTS.URL,
		WhatsAppPhoneNumberID: fakeGraph.PhoneNumberID(), MessengerPageID: fakeGraph.PageID(),
		EmailFrom: demoMailFrom, SMTPURL: "smtp://" + demoMail.smtp.Addr() + "?starttls=off", InboundEmailSecret: demoMailSecret,
		IMAPPoll: time.Minute, CSATDelay: "30s", MetricsToken: "demo-metrics-" + crand.Text()[:12],
	}}
	m.Logger = logger
	m.ProviderHTTP = twilioTS.Client()
	shop := &demoShop{}
	m.ExtraRoutes = map[string]http.Handler{"GET /demo/shop": shop}
	// The team, its routing and its past week are written before
	// Switchboard starts serving.
	m.Config.DatabaseURL = "sqlite:" + filepath.Join(dir, "switchboard.db")
	token, agents, err := seedDemoData(ctx, m.Config.DatabaseURL, logger, time.Now().UTC())
	if err != nil {
		return err
	}
	if err := m.Open(ctx); err != nil {
		return err
	}
	defer m.Close()

	siteKey, err := seedDemoSite(ctx, m, shop)
	if err != nil {
		return err
	}
	url := m.URL()
	fmt.Fprintf(stdout, `
Switchboard demo is running (embedded SQLite in %s).

  URL:        %s
  Sign in:    alex@switchboard.demo (admin), sarah@switchboard.demo (supervisor)
              or sam@switchboard.demo (agent), password %s
  API token:  %s   (Alex Admin, admin)

Try:
  curl -s -H 'Authorization: Bearer %s' '%s/api/v1/conversations?limit=5'
  curl -s -X POST %s/forms/contact -H 'Content-Type: application/json' \
       -d '{"name":"You","email":"you@example.com","message":"Hello from curl"}'
  curl -s -H 'Authorization: Bearer %s' %s/metrics | grep switchboard_

Live chat: a demo shop page with the chat widget is at %s/demo/shop
(site key %s); a simulated visitor chats there through the real
/chat/sessions and /chat/ws, and an agent answers on livechat.

A simulator posts contact-form messages, e-mail (as an inbound-mail service
would) and signed Twilio (SMS/MMS, voicemail) and Meta (WhatsApp, Messenger,
Instagram) webhooks into the real endpoints every ~%s
(repeat customers included, the same people on several channels), and agents
answer some of them; replies go to local Twilio, Graph and SMTP stand-ins,
which report their delivery, and some customers answer our e-mails. Ctrl-C stops it.
`, dir, url, demoPassword, token, token, url, url, m.Config.MetricsToken, url, url, siteKey, *every)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		simulate(ctx, m.Logger, url, agents, *every, fakeTwilio, fakeGraph, demoMail)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		simulateChat(ctx, m.Logger, url, siteKey, agents, *every)
	}()
	<-ctx.Done()
	wg.Wait()
	fmt.Fprintln(stdout, "demo stopped")
	return nil
}

type demoAgent struct{ ID, Token string }

// demoPassword signs every demo agent in; the demo prints it (it guards
// a throwaway database on the loopback address).
const demoPassword = "switchboard-demo"

// seedDemo creates the demo team and returns the admin's token and the
// other agents.
func seedDemo(ctx context.Context, svc *inbox.Service) (string, []demoAgent, error) {
	team := []switchboard.Agent{
		{Name: "Alex Admin", Email: "alex@switchboard.demo", Role: switchboard.RoleAdmin},
		{Name: "Sarah Lee", Email: "sarah@switchboard.demo", Role: switchboard.RoleSupervisor, Skills: []string{"billing"}},
		{Name: "Sam Patel", Email: "sam@switchboard.demo", Skills: []string{"shipping"}},
		{Name: "Priya Nair", Email: "priya@switchboard.demo", Skills: []string{"returns", "shipping"}},
	}
	var admin string
	var others []demoAgent
	for i, a := range team {
		a.Status = switchboard.AgentOnline
		created, token, err := svc.AddAgent(ctx, switchboard.System, a)
		if err != nil {
			return "", nil, fmt.Errorf("seed agent: %w", err)
		}
		if err := svc.SetPassword(ctx, switchboard.System, created.ID, demoPassword); err != nil {
			return "", nil, fmt.Errorf("seed agent password: %w", err)
		}
		if i == 0 {
			admin = token
		} else {
			others = append(others, demoAgent{created.ID, token})
		}
	}
	// Topics by keyword, so the router sends billing to Sarah, parcels to
	// Sam and Priya, returns to Priya; the rest by workload.
	keywords := []route.KeywordRule{
		{Topic: "billing", Keywords: []string{"charged", "refund", "invoice", "payment", "pricing"}},
		{Topic: "shipping", Keywords: []string{"parcel", "tracking", "delivery", "delivery address", "crushed"}},
		{Topic: "returns", Keywords: []string{"return", "label", "replacement"}},
	}
	if _, err := svc.PutRoutingConfig(ctx, switchboard.System, inbox.RoutingConfig{Keywords: keywords}); err != nil {
		return "", nil, fmt.Errorf("seed routing: %w", err)
	}
	return admin, others, nil
}

// simulate posts realistic contact-form traffic into the real endpoint and
// has agents take and answer some of it through the real API.
func simulate(ctx context.Context, log *slog.Logger, base string, agents []demoAgent, every time.Duration, fakeTwilio *twiliotest.Server, fakeGraph *metatest.Server, demoMail *demoMail) {
	client := &http.Client{Timeout: 10 * time.Second}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	post := func(method, path, token string, body any) (*http.Response, error) {
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return client.Do(req)
	}
	for n := 0; ; n++ {
		wait := time.Duration(float64(every) * (0.5 + rng.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		// A small set of regulars write most of the messages.
		c := demoCustomers[min(int(rng.ExpFloat64()*3), len(demoCustomers)-1)]
		topic := demoTopics[rng.IntN(len(demoTopics))]
		if rng.IntN(4) == 0 {
			// Social and WhatsApp traffic through signed Meta webhooks.
			body := fmt.Sprintf(topic.Message, 1000+rng.IntN(9000))
			var resp *http.Response
			var err error
			switch {
			case c.Phone != "":
				// The same phone number as the customer's SMS and form.
				_, resp, err = fakeGraph.SendWhatsAppText(ctx, http.DefaultClient, base+"/webhooks/meta", strings.TrimPrefix(c.Phone, "+"), c.Name, body)
			case rng.IntN(2) == 0:
				_, resp, err = fakeGraph.SendMessengerText(ctx, http.DefaultClient, base+"/webhooks/meta", fmt.Sprint(6922891234560000+rng.IntN(5)), body)
			default:
				_, resp, err = fakeGraph.SendInstagramText(ctx, http.DefaultClient, base+"/webhooks/meta", fmt.Sprint(1784140000000000+rng.IntN(5)), body)
			}
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("demo: send Meta webhook", "err", err)
				}
				continue
			}
			if resp.StatusCode != http.StatusOK {
				log.Warn("demo: Meta webhook refused", "status", resp.StatusCode)
			}
			continue
		}
		if c.Phone != "" && rng.IntN(8) == 0 {
			leaveVoicemail(ctx, log, base, fakeTwilio, c.Phone, fmt.Sprintf(topic.Message, 1000+rng.IntN(9000)), n)
			continue
		}
		if c.Phone != "" && rng.IntN(3) == 0 {
			// The same person, by SMS this time (sometimes with a photo).
			in := twiliotest.Inbound{From: c.Phone, To: demoNumber, Body: fmt.Sprintf(topic.Message, 1000+rng.IntN(9000))}
			if rng.IntN(3) == 0 {
				in.Media = []twiliotest.MediaFile{{ContentType: "image/png", Data: demoPNG}}
			}
			resp, err := fakeTwilio.SendInbound(ctx, http.DefaultClient, base+"/webhooks/twilio/sms", in)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("demo: send SMS", "err", err)
				}
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				log.Warn("demo: SMS webhook refused", "status", resp.StatusCode)
			}
			continue
		}
		if rng.IntN(4) == 0 {
			// By e-mail, through the inbound-mail webhook.
			demoMail.send(c, topic.Subject, fmt.Sprintf(topic.Message, 1000+rng.IntN(9000)))
			continue
		}
		email := c.Email
		if rng.IntN(4) == 0 {
			email = strings.ToUpper(email[:1]) + email[1:] // the same person, typed differently
		}
		resp, err := post(http.MethodPost, "/forms/contact", "", map[string]string{
			"name": c.Name, "email": email, "phone": c.Phone, "subject": topic.Subject,
			"message": fmt.Sprintf(topic.Message, 1000+rng.IntN(9000)),
		})
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("demo: post form", "err", err)
			}
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			log.Warn("demo: form post refused", "status", resp.StatusCode)
		}
		if n%3 == 2 && len(agents) > 0 {
			answerOne(ctx, log, post, agents[rng.IntN(len(agents))], rng)
		}
	}
}

// answerOne has an agent take the newest unassigned conversation, reply,
// and sometimes resolve it, all through the agent API.
func answerOne(ctx context.Context, log *slog.Logger, post func(string, string, string, any) (*http.Response, error), a demoAgent, rng *rand.Rand) {
	// The router hands out conversations; the agent answers their own
	// oldest, or takes an unassigned one if the queue holds any.
	var id string
	mine := false
	for _, q := range []string{"assignee=" + a.ID, "assignee=none"} {
		resp, err := post(http.MethodGet, "/api/v1/conversations?status=open&limit=1&"+q, a.Token, nil)
		if err != nil {
			return
		}
		var list struct {
			Conversations []struct {
				ID string `json:"id"`
			} `json:"conversations"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err == nil && len(list.Conversations) > 0 {
			id, mine = list.Conversations[0].ID, q != "assignee=none"
			break
		}
	}
	if id == "" {
		return
	}
	replies := []string{
		"Thanks for reaching out! I'm looking into this now and will update you shortly.",
		"Sorry about that. I've opened a claim with the carrier and a replacement is on its way.",
		"I've refunded the duplicate charge; it will show on your statement in 3-5 days.",
	}
	type step struct {
		path string
		body any
	}
	var steps []step
	if !mine {
		steps = append(steps, step{"/api/v1/conversations/" + id + "/assign", map[string]string{"agent_id": a.ID}})
	}
	steps = append(steps, step{"/api/v1/conversations/" + id + "/messages", map[string]string{"text": replies[rng.IntN(len(replies))]}})
	if rng.IntN(2) == 0 {
		steps = append(steps, step{"/api/v1/conversations/" + id + "/status", map[string]string{"status": "resolved"}})
	}
	for _, step := range steps {
		r, err := post(http.MethodPost, step.path, a.Token, step.body)
		if err != nil {
			return
		}
		r.Body.Close()
		if r.StatusCode >= 300 {
			log.Warn("demo: agent action refused", "path", step.path, "status", r.StatusCode)
			return
		}
	}
}
