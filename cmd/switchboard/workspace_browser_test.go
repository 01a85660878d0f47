package main

// The agent workspace end to end (docs/design.md §6.1, §6.3): a real
// Switchboard with the WhatsApp (Graph stand-in), SMS and voice (Twilio
// stand-in) and e-mail (the inbound webhook) channels, one injected clock,
// and two real headless Chromiums, one per agent (so their cookies
// differ), signing in through the form and working as agents do. Controls
// are found by their accessible names, as the design promises them.
//
// With SWITCHBOARD_SCREENSHOTS=1 the test also writes the README's
// pictures to docs/screenshots/.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtptest"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
	"github.com/switchboard-inbox/switchboard/internal/browsertest"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

const (
	wsPassword  = "password-long-enough"
	wsSheena    = "16505551234" // WhatsApp wa_id; +16505551234 on SMS and voice
	wsAna       = "+14155550123"
	wsTemplate  = "order_update"
	wsTemplBody = "Your order {{1}} is {{2}}."
)

// wsEnv is the running Switchboard and its stand-ins.
type wsEnv struct {
	t      *testing.T
	m      *Main
	base   string
	clock  *testenv.Clock
	graph  *metatest.Server
	twilio *twiliotest.Server
	smtp   *smtptest.Server // the relay replies by e-mail go through
	token  string           // Ada's API token
	logs   *testenv.SyncBuffer

	mu     sync.Mutex
	stored []wsStored
}

type wsStored struct {
	in  switchboard.Inbound
	res switchboard.IngestResult
}

func newWorkspaceEnv(t *testing.T) *wsEnv {
	t.Helper()
	e := &wsEnv{t: t, clock: testenv.NewClock(time.Now().UTC().Truncate(time.Second)), logs: &testenv.SyncBuffer{}}
	addr := freeAddr(t)
	e.graph = metatest.New(metaSecret, metaToken, metatest.WithWebhook("http://"+addr+"/webhooks/meta"), metatest.WithClock(e.clock.Now))
	graphTS := httptest.NewServer(e.graph.Handler())
	e.graph.SetBaseURL(graphTS.URL)
	e.twilio = twiliotest.New(testSID, testToken)
	twilioTS := httptest.NewTLSServer(e.twilio.Handler())
	e.twilio.SetBaseURL(twilioTS.URL)
	t.Cleanup(func() { e.graph.Close(); graphTS.Close(); e.twilio.Close(); twilioTS.Close() })
	var err error
	if e.smtp, err = smtptest.Start(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.smtp.Close() })

	e.m = &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, RoutingOff: true,
		TwilioAccountSID: testSID, TwilioAuthToken: testToken, TwilioAPIURL: twilioTS.URL, TwilioFrom: ourNumber, PhoneRegion: "US",
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, MetaAccessToken: metaToken, GraphAPIURL: graphTS.URL,
		WhatsAppPhoneNumberID: e.graph.PhoneNumberID(),
		EmailFrom:             "Acme Support <support@acme.test>", InboundEmailSecret: mailSecret,
		SMTPURL: "smtp://" + e.smtp.Addr() + "?starttls=off",
	}}
	e.m.Clock = e.clock
	e.m.ProviderHTTP = twilioTS.Client()
	e.m.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.m.OnStored = func(ins []switchboard.Inbound, res []switchboard.IngestResult) {
		e.mu.Lock()
		defer e.mu.Unlock()
		for i := range res {
			e.stored = append(e.stored, wsStored{ins[i], res[i]})
		}
	}
	if err := e.m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.m.Close()
		if t.Failed() {
			t.Logf("switchboard's log:\n%s", e.logs.String())
		}
	})
	e.base = e.m.URL()
	ctx := context.Background()
	ada, token := addAgent(t, e.m, switchboard.Agent{Name: "Ada Lovelace", Email: "ada@team.example", Role: switchboard.RoleAdmin})
	ben, _ := addAgent(t, e.m, switchboard.Agent{Name: "Ben Okafor", Email: "ben@team.example", Role: switchboard.RoleAgent})
	e.token = token
	for _, a := range []switchboard.Agent{ada, ben} {
		if err := e.m.Inbox.SetPassword(ctx, switchboard.System, a.ID, wsPassword); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.Inbox.PutTemplate(ctx, switchboard.System, switchboard.MessageTemplate{Name: wsTemplate, Language: "en_US", Category: "UTILITY",
		Body: wsTemplBody, Status: "APPROVED"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// waitStored waits until the pipeline has stored a message for which ok
// holds, and returns it.
func (e *wsEnv) waitStored(t *testing.T, what string, ok func(wsStored) bool) wsStored {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		e.mu.Lock()
		for _, s := range e.stored {
			if s.res.Err == nil && ok(s) {
				e.mu.Unlock()
				return s
			}
		}
		e.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s was not stored within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tick moves the clock on a minute, so that every message has a time of
// its own.
func (e *wsEnv) tick() { e.clock.Advance(time.Minute) }

// whatsapp posts a customer's signed WhatsApp webhook and waits until the
// message is stored.
func (e *wsEnv) whatsapp(t *testing.T, from, name, text string) wsStored {
	t.Helper()
	e.tick()
	wamid, resp, err := e.graph.SendWhatsAppText(context.Background(), nil, e.base+"/webhooks/meta", from, name, text)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("WhatsApp webhook: %d", resp.StatusCode)
	}
	return e.waitStored(t, "the WhatsApp message", func(s wsStored) bool { return s.in.ProviderID == wamid })
}

// sms posts a customer's signed Twilio SMS webhook and waits until the
// message is stored.
func (e *wsEnv) sms(t *testing.T, from, body string) wsStored {
	t.Helper()
	e.tick()
	wh, err := e.twilio.InboundWebhook(e.base+"/webhooks/twilio/sms", twiliotest.Inbound{From: from, To: ourNumber, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.twilio.SendWebhook(context.Background(), http.DefaultClient, wh)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SMS webhook: %d", resp.StatusCode)
	}
	sid := wh.Form.Get("MessageSid")
	return e.waitStored(t, "the SMS "+strconv.Quote(body), func(s wsStored) bool {
		return s.in.Channel == switchboard.ChannelSMS && strings.Contains(s.in.ProviderID, sid)
	})
}

// voicemail runs a call from the number that leaves a transcribed
// voicemail, and waits until it is stored.
func (e *wsEnv) voicemail(t *testing.T, from, transcript string) wsStored {
	t.Helper()
	e.tick()
	wav := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), make([]byte, 64)...)
	recSID, recURL := e.twilio.AddRecording(wav)
	callSID := "CA" + strings.Repeat("7", 32)
	post := func(path string, form url.Values, want int) {
		t.Helper()
		u := e.base + path
		req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(twilio.SignatureHeader, twilio.Sign(testToken, u, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	post("/webhooks/twilio/voice", url.Values{"CallSid": {callSID}, "From": {from}, "To": {ourNumber}}, 200)
	post("/webhooks/twilio/recording", url.Values{"CallSid": {callSID}, "RecordingSid": {recSID}, "RecordingStatus": {"completed"},
		"RecordingDuration": {"9"}, "RecordingUrl": {recURL}}, 204)
	s := e.waitStored(t, "the voicemail", func(s wsStored) bool { return s.in.Channel == switchboard.ChannelVoice })
	post("/webhooks/twilio/transcription", url.Values{"RecordingSid": {recSID}, "TranscriptionStatus": {"completed"},
		"TranscriptionText": {transcript}}, 204)
	return s
}

// email posts a raw mail to the inbound e-mail webhook and waits until it
// is stored.
func (e *wsEnv) email(t *testing.T, messageID, raw string) wsStored {
	t.Helper()
	e.tick()
	req, _ := http.NewRequest("POST", e.base+"/webhooks/email", strings.NewReader(raw))
	req.Header.Set("Content-Type", "message/rfc822")
	req.Header.Set("Authorization", "Bearer "+mailSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("e-mail webhook: %d", resp.StatusCode)
	}
	return e.waitStored(t, "the e-mail "+messageID, func(s wsStored) bool {
		return s.in.Channel == switchboard.ChannelEmail && strings.Contains(s.in.ProviderID, messageID)
	})
}

// mail is a raw mail from the sender, dated by the injected clock.
func (e *wsEnv) mail(from, subject, messageID, contentType, body string) string {
	return "From: " + from + "\r\nTo: support@acme.test\r\nSubject: " + subject + "\r\nMessage-ID: <" + messageID + ">\r\n" +
		"Date: " + e.clock.Now().Format(time.RFC1123Z) + "\r\nMIME-Version: 1.0\r\nContent-Type: " + contentType + "\r\n\r\n" + body
}

func (e *wsEnv) api(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	return callAPI(t, e.base, e.token, method, path, body, out)
}

// axFind returns the elements with the computed accessible role and name
// (Accessibility.queryAXTree, as assistive technology sees the page),
// leaving out those the accessibility tree ignores (hidden ones). It works
// on backend node ids, which stay valid whatever chromedp's mirror of the
// DOM holds.
func axFind(ctx context.Context, role, name string) ([]cdp.BackendNodeID, error) {
	var ids []cdp.BackendNodeID
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		doc, err := cdp.Call(ctx, t, runtime.Evaluate, runtime.EvaluateParams{Expression: "document", ObjectGroup: "sb-ax"})
		if err != nil {
			return err
		}
		defer cdp.Call(ctx, t, runtime.ReleaseObjectGroup, runtime.ReleaseObjectGroupParams{ObjectGroup: "sb-ax"})
		res, err := cdp.Call(ctx, t, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{ObjectID: doc.Result.ObjectID, AccessibleName: name, Role: role})
		if err != nil {
			return err
		}
		for _, x := range res.Nodes {
			if !x.Ignored && x.BackendDOMNodeID != 0 {
				ids = append(ids, x.BackendDOMNodeID)
			}
		}
		return nil
	}))
	return ids, err
}

// roleCount counts the elements with the role and accessible name, now.
func roleCount(t *testing.T, p *browsertest.Tab, role, name string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 10*time.Second)
	defer cancel()
	ids, err := axFind(ctx, role, name)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// control waits, 15 s at most, for the one element with the role and
// accessible name.
func control(t *testing.T, p *browsertest.Tab, role, name string) cdp.BackendNodeID {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.Ctx, 5*time.Second)
		ids, err := axFind(ctx, role, name)
		cancel()
		if err == nil && len(ids) == 1 {
			return ids[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single %s named %q within 15s (%d found, %v); page text: %q", role, name, len(ids), err, browsertest.Eval[string](p, `document.body.innerText`))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// typeInto focuses the control with the role and accessible name and
// types the text as key presses.
func typeInto(t *testing.T, p *browsertest.Tab, role, name, text string) {
	t.Helper()
	id := control(t, p, role, name)
	p.Do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, dom.Focus, dom.FocusParams{BackendNodeID: id})
		return err
	}), chromedp.KeyEvent(text))
}

// clickOn clicks the middle of the control with the role and accessible
// name with the mouse, as a person does: scrolled into view, and, when
// something else (the sticky composer) covers it there, scrolled on until
// it is uncovered. Whatever is on top at that point gets the click.
func clickOn(t *testing.T, p *browsertest.Tab, role, name string) {
	t.Helper()
	id := control(t, p, role, name)
	var at struct {
		X, Y float64
		OK   bool
		On   string
	}
	p.Do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		obj, err := cdp.Call(ctx, tg, dom.ResolveNode, dom.ResolveNodeParams{BackendNodeID: id, ObjectGroup: "sb-click"})
		if err != nil {
			return err
		}
		defer cdp.Call(ctx, tg, runtime.ReleaseObjectGroup, runtime.ReleaseObjectGroupParams{ObjectGroup: "sb-click"})
		byValue := true
		for _, block := range []string{"nearest", "start", "end"} {
			res, err := cdp.Call(ctx, tg, runtime.CallFunctionOn, runtime.CallFunctionOnParams{
				FunctionDeclaration: `function() {
					this.scrollIntoView({block: '` + block + `', inline: 'nearest'});
					const r = this.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
					const hit = document.elementFromPoint(x, y);
					return {X: x, Y: y, OK: !!hit && (hit === this || this.contains(hit)), On: hit ? hit.outerHTML.slice(0, 80) : 'nothing'};
				}`,
				ObjectID: obj.Object.ObjectID, ReturnByValue: &byValue,
			})
			if err != nil {
				return err
			}
			if res.ExceptionDetails != nil {
				return fmt.Errorf("locating the %s %q: %s", role, name, res.ExceptionDetails.Text)
			}
			if err := json.Unmarshal([]byte(res.Result.Value), &at); err != nil {
				return err
			}
			if at.OK {
				return nil
			}
		}
		return fmt.Errorf("the %s %q is covered by %s wherever it is scrolled", role, name, at.On)
	}))
	p.Do(chromedp.MouseClickXY(at.X, at.Y))
}

// The page's controls, in page JavaScript.
const (
	jsReply   = `document.getElementById('reply')`
	jsSend    = `document.getElementById('send')`
	jsChannel = `document.getElementById('channel')`
	jsInfo    = `document.getElementById('compose-info')`
	jsReason  = `document.getElementById('compose-reason')`
	// visible is true for an element that is rendered.
	jsVisible = `(el => !!el && el.checkVisibility())`
)

// signIn signs in through the /login form: the workspace sends a browser
// without a session there, and back to the inbox once signed in.
func signIn(t *testing.T, p *browsertest.Tab, base, email string) {
	t.Helper()
	p.Do(chromedp.Navigate(base + "/"))
	p.Wait("the sign-in form", `location.pathname === '/login' && !!document.querySelector('form[action="/login"] input[name=email]')`)
	p.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), wsPassword),
	)
	clickOn(t, p, "button", "Sign in")
	p.Wait("the inbox after signing in", `location.pathname === '/' && document.body.dataset.page === 'inbox' && !!document.getElementById('inbox-list')`)
}

// openConversation opens a conversation page and waits until its agent
// socket is live.
func openConversation(p *browsertest.Tab, base, id string) {
	p.Do(chromedp.Navigate(base + "/conversations/" + id))
	p.Wait("the conversation page", `document.body.dataset.page === 'conversation' && document.getElementById('conversation').dataset.conversation === `+strconv.Quote(id))
	p.Wait("the live socket", `document.body.dataset.live === '1'`)
}

// setChannel picks a channel in the "Channel" picker: the select's value
// changes and it fires change, as when a person picks an option.
func setChannel(t *testing.T, p *browsertest.Tab, ch string) {
	t.Helper()
	if !browsertest.Eval[bool](p, `(s => { if (![...s.options].some(o => o.value === `+strconv.Quote(ch)+`)) return false; s.value = `+strconv.Quote(ch)+`; s.dispatchEvent(new Event('change', {bubbles: true})); return true })(`+jsChannel+`)`) {
		t.Fatalf("the Channel picker has no %s: %q", ch, browsertest.Eval[string](p, jsChannel+`.innerText`))
	}
}

// screenshot writes the viewport (1280x800) to docs/screenshots/name when
// SWITCHBOARD_SCREENSHOTS is set.
func screenshot(t *testing.T, p *browsertest.Tab, name string) {
	t.Helper()
	if os.Getenv("SWITCHBOARD_SCREENSHOTS") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.Ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", filepath.Join(dir, name))
}

// noPageErrors fails the test on an uncaught exception in the browser.
func noPageErrors(t *testing.T, b *browsertest.Browser) {
	t.Helper()
	for _, line := range b.Console() {
		if strings.HasPrefix(line, "exception") {
			t.Errorf("browser: %s", line)
		}
	}
}

func TestWorkspaceBrowser(t *testing.T) {
	e := newWorkspaceEnv(t)
	ada := browsertest.Start(t)
	ben := browsertest.Start(t) // another profile: another agent's cookies
	base := e.base

	var sheenaConv, sheenaCustomer, anaConv string

	t.Run("SignIn", func(t *testing.T) {
		p := ada.NewTab(t)
		// A wrong password keeps the browser on the form, with the reason.
		p.Do(chromedp.Navigate(base + "/login"))
		p.Do(
			chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "ada@team.example"),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "not-the-password"),
		)
		clickOn(t, p, "button", "Sign in")
		p.Wait("the sign-in error", `location.pathname === '/login' && !!document.getElementById('login-error')`)
		signIn(t, p, base, "ada@team.example")
		p.Wait("the socket live", `document.body.dataset.live === '1'`)
		if got := browsertest.Eval[string](p, `document.cookie`); strings.Contains(got, "sb_session") {
			t.Errorf("the session cookie is readable by scripts: %q", got)
		}
		if n := roleCount(t, p, "combobox", "Status"); n != 1 {
			t.Errorf("%d controls named Status on the inbox, want the status switch", n)
		}
		if got := browsertest.Eval[string](p, `document.querySelector('.me a[href="/account"]').textContent`); got != "Ada Lovelace" {
			t.Errorf("signed in as %q", got)
		}
	})

	t.Run("LiveRow", func(t *testing.T) {
		p := ada.NewTab(t)
		p.Do(chromedp.Navigate(base + "/"))
		p.Wait("the inbox", `document.body.dataset.page === 'inbox'`)
		if location := browsertest.Eval[string](p, `location.pathname`); location != "/" {
			t.Fatalf("the signed-in browser is at %s, not the inbox", location)
		}
		// Routing is off: nothing is anybody's, so the list to watch is All.
		clickOn(t, p, "link", "All")
		p.Wait("the All view, live", `new URLSearchParams(location.search).get('view') === 'all' && document.body.dataset.live === '1'`)
		browsertest.Eval[bool](p, `window.sbBeforeWebhook = 'still here', true`)

		s := e.whatsapp(t, wsSheena, "Sheena Nelson", "Does the gooseneck kettle come in white?")
		sheenaConv, sheenaCustomer = s.res.ConversationID, s.res.CustomerID
		row := `document.querySelector('#inbox-rows tr[data-conversation="` + sheenaConv + `"]')`
		p.Wait("the new conversation's row", row+`.textContent.includes('Does the gooseneck kettle come in white?')`)
		if !browsertest.Eval[bool](p, `window.sbBeforeWebhook === 'still here'`) {
			t.Fatal("the page was reloaded to show the row")
		}
		if got := browsertest.Eval[string](p, row+`.querySelector('.who').textContent.trim()`); got != "Sheena Nelson" {
			t.Errorf("the row names %q", got)
		}
		if got := browsertest.Eval[string](p, row+`.querySelector('.chs .ch').getAttribute('aria-label')`); got != "WhatsApp" {
			t.Errorf("the row's channel is %q", got)
		}
		p.Wait("the header's count", `document.getElementById('count-waiting')?.textContent === '1'`)
	})

	t.Run("ReplyOnWhatsApp", func(t *testing.T) {
		if sheenaConv == "" {
			t.Skip("needs LiveRow's conversation")
		}
		p := ada.NewTab(t)
		openConversation(p, base, sheenaConv)
		p.Wait("WhatsApp as the default channel", jsChannel+`.value === 'whatsapp'`)
		if n := roleCount(t, p, "combobox", "Channel"); n != 1 {
			t.Errorf("%d controls named Channel", n)
		}
		// Inside the window: free text, no template picker, no e-mail fields.
		p.Wait("the composer's first answer", jsInfo+`.textContent.includes('window closes in')`)
		if !browsertest.Eval[bool](p, jsVisible+`(`+jsReply+`) && !`+jsVisible+`(document.getElementById('template-fields')) && !`+jsVisible+`(document.getElementById('email-fields'))`) {
			t.Errorf("inside the window the composer shows: %q", browsertest.Eval[string](p, `document.getElementById('composer').innerText`))
		}
		if n := roleCount(t, p, "combobox", "Template"); n != 0 {
			t.Errorf("a template picker inside the window (%d)", n)
		}
		reply := "Yes: white, black and sage green. Shall I reserve a white one for you?"
		e.tick() // the reply comes a minute after the question
		typeInto(t, p, "textbox", "Reply", reply)
		p.Wait("Send enabled", `!`+jsSend+`.disabled`)
		clickOn(t, p, "button", "Send")

		deadline := time.Now().Add(15 * time.Second)
		for {
			sends := e.graph.WhatsAppSends()
			if len(sends) == 1 {
				if s := sends[0]; s.Type != "text" || s.To != wsSheena || s.Text != reply {
					t.Fatalf("the Graph stand-in received %+v", s)
				}
				break
			}
			if len(sends) > 1 || time.Now().After(deadline) {
				t.Fatalf("the Graph stand-in received %d sends, want the one reply", len(sends))
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.Wait("the reply in the timeline", `[...document.querySelectorAll('#timeline .msg-out')].some(m => m.querySelector('.text')?.textContent === `+strconv.Quote(reply)+` && m.querySelector('.ch-whatsapp'))`)
		p.Wait("the Reply box emptied", jsReply+`.value === ''`)
		// The stand-in reports delivery: the message's status follows live.
		p.Wait("the delivery report", `[...document.querySelectorAll('#timeline .msg-out .delivery')].some(d => d.textContent === 'delivered' || d.textContent === 'read')`)
		if n := browsertest.Eval[int](p, `[...document.querySelectorAll('#timeline .msg-out')].filter(m => m.textContent.includes('white, black and sage')).length`); n != 1 {
			t.Errorf("the reply shows %d times", n)
		}
	})

	t.Run("Presence", func(t *testing.T) {
		if sheenaConv == "" {
			t.Skip("needs LiveRow's conversation")
		}
		e.tick() // Ada's typing in ReplyOnWhatsApp is over
		p := ada.NewTab(t)
		openConversation(p, base, sheenaConv)
		q := ben.NewTab(t)
		signIn(t, q, base, "ben@team.example")
		if got := browsertest.Eval[string](q, `document.querySelector('.me a[href="/account"]').textContent`); got != "Ben Okafor" {
			t.Fatalf("the second browser is signed in as %q", got)
		}
		openConversation(q, base, sheenaConv)
		p.Wait("Ben viewing", `document.getElementById('conv-presence').textContent.includes('Ben Okafor is viewing')`)
		q.Wait("Ada viewing", `document.getElementById('conv-presence').textContent.includes('Ada Lovelace is viewing')`)
		if got := browsertest.Eval[string](p, `document.getElementById('conv-presence').textContent`); strings.Contains(got, "Ada") {
			t.Errorf("Ada's page shows herself: %q", got)
		}
		typeInto(t, q, "textbox", "Reply", "Hi Sheena, ")
		p.Wait("Ben typing", `document.getElementById('conv-presence').textContent.includes('Ben Okafor is typing')`)
		p.Wait("the soft lock", `document.getElementById('soft-lock').textContent.includes('Ben Okafor is typing')`)
		// A warning, never a lock.
		if browsertest.Eval[bool](p, jsReply+`.disabled || `+jsReply+`.readOnly`) {
			t.Error("the soft lock locked Ada's Reply box")
		}
		noPageErrors(t, ben)
	})

	t.Run("SMSSegments", func(t *testing.T) {
		s := e.sms(t, wsAna, "Hi, can I still change the delivery address for order #2051?")
		anaConv = s.res.ConversationID
		p := ada.NewTab(t)
		openConversation(p, base, anaConv)
		p.Wait("SMS as the default channel", jsChannel+`.value === 'sms'`)
		typeInto(t, p, "textbox", "Reply", strings.Repeat("a", 160))
		p.Wait("one segment", jsInfo+`.textContent.includes('1 segment') && !`+jsInfo+`.textContent.includes('1 segments')`)
		typeInto(t, p, "textbox", "Reply", " and more")
		p.Wait("two segments and a cost", `/GSM-7 · 2 segments · about \$\d+\.\d{4}/.test(`+jsInfo+`.textContent)`)
		if !browsertest.Eval[bool](p, `!`+jsSend+`.disabled`) {
			t.Errorf("Send disabled for a long SMS: %q", browsertest.Eval[string](p, jsReason+`.textContent`))
		}
	})

	t.Run("SMSOptOut", func(t *testing.T) {
		if anaConv == "" {
			t.Skip("needs SMSSegments' conversation")
		}
		e.sms(t, wsAna, "STOP")
		p := ada.NewTab(t)
		openConversation(p, base, anaConv)
		sms := jsChannel + `.querySelector('option[value=sms]')`
		p.Wait("the SMS option marked", sms+`.textContent.includes('unavailable') && `+sms+`.textContent.includes('opted out')`)
		// The customer's phone reaches WhatsApp too: pick it, then SMS.
		setChannel(t, p, "whatsapp")
		p.Wait("WhatsApp's templates, Send enabled", jsVisible+`(document.getElementById('template-fields')) && !`+jsSend+`.disabled && `+jsReason+`.textContent === ''`)
		setChannel(t, p, "sms")
		p.Wait("Send disabled with the reason", jsSend+`.disabled && `+jsReason+`.textContent.includes('opted out of SMS') && `+jsVisible+`(`+jsReason+`) && `+jsVisible+`(`+jsReply+`)`)
		typeInto(t, p, "textbox", "Reply", "Are you still there?")
		p.Wait("the composer's answer to the draft", jsInfo+`.textContent !== '' || `+jsReason+`.textContent !== ''`)
		if !browsertest.Eval[bool](p, jsSend+`.disabled`) {
			t.Error("Send enabled on SMS after STOP")
		}
		if n := len(e.twilio.Messages()); n != 0 {
			t.Errorf("Twilio was asked to send %d messages", n)
		}
	})

	t.Run("MergedTimeline", func(t *testing.T) {
		if sheenaConv == "" {
			t.Skip("needs LiveRow's conversation")
		}
		e.sms(t, "+"+wsSheena, "Any news on the white kettle? I'm away from WhatsApp today.")
		e.voicemail(t, "+"+wsSheena, "Hi, it's Sheena about the white kettle, please call me back.")
		mail := e.email(t, "sheena.1@example.com", e.mail("Sheena Nelson <sheena@example.com>", "White kettle", "sheena.1@example.com", "text/plain; charset=utf-8",
			"Hello, writing from my work address: please send the invoice for the white kettle here.\r\n"))
		if mail.res.CustomerID == sheenaCustomer {
			t.Fatal("an e-mail address joined the phone's customer by itself")
		}
		var merged struct{ ID string }
		if code := e.api(t, "POST", "/api/v1/customers/"+sheenaCustomer+"/merge", map[string]string{"other_id": mail.res.CustomerID}, &merged); code != 200 || merged.ID != sheenaCustomer {
			t.Fatalf("merge: %d %+v", code, merged)
		}
		p := ada.NewTab(t)
		openConversation(p, base, sheenaConv)
		for _, c := range []struct{ ch, text string }{
			{"whatsapp", "Does the gooseneck kettle come in white?"},
			{"sms", "Any news on the white kettle?"},
			{"email", "please send the invoice for the white kettle here"},
			{"voice", ""},
		} {
			p.Wait("the "+c.ch+" message", `[...document.querySelectorAll('#timeline .msg-in')].some(m => m.querySelector('.ch-`+c.ch+`') && m.textContent.includes(`+strconv.Quote(c.text)+`))`)
		}
		p.Wait("the voicemail's transcript", `document.querySelector('#timeline .msg-in .transcript')?.textContent.includes("it's Sheena about the white kettle")`)
		if got := browsertest.Eval[string](p, `[...document.querySelectorAll('.customer .identities li')].map(li => li.textContent.trim()).join(' | ')`); !strings.Contains(got, "sheena@example.com") || !strings.Contains(got, "650") {
			t.Errorf("the customer panel lists %q, want the phone and the address", got)
		}
		// Scrolled to the latest, as an agent reads a thread.
		browsertest.Eval[bool](p, `window.scrollTo(0, document.documentElement.scrollHeight), true`)
		screenshot(t, p, "conversation.png")
	})

	t.Run("FoldedQuote", func(t *testing.T) {
		raw := e.mail("Carol Jones <carol@example.com>", "Re: Your replacement lid", "fold.1@example.com", `multipart/alternative; boundary="alt"`,
			"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe replacement lid fits perfectly, thank you!\r\n\r\n"+
				"On Mon, Nov 30, 2026 at 9:00 AM Acme Support <support@acme.test> wrote:\r\n> We have posted a replacement lid today.\r\n> Tracking number ZX99-QUOTED.\r\n"+
				"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"+
				`<div dir="ltr">The replacement lid fits perfectly, thank you!</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Nov 30, 2026 at 9:00 AM Acme Support &lt;<a href="mailto:support@acme.test">support@acme.test</a>&gt; wrote:<br></div>`+
				`<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">We have posted a replacement lid today.<br>Tracking number ZX99-QUOTED.</blockquote></div>`+
				"\r\n--alt--\r\n")
		s := e.email(t, "fold.1@example.com", raw)
		if s.res.Message != nil && !strings.Contains(s.res.Message.HTML, `data-sb-fold="quote"`) {
			t.Errorf("the parser did not mark the quote for folding (channel/email/parse): %q", s.res.Message.HTML)
		}
		p := ada.NewTab(t)
		openConversation(p, base, s.res.ConversationID)
		html := `document.querySelector('#timeline .email-html')`
		p.Wait("the e-mail", html+`?.innerText.includes('The replacement lid fits perfectly')`)
		if !browsertest.Eval[bool](p, html+`.textContent.includes('ZX99-QUOTED')`) {
			t.Fatalf("the quote is not on the page at all: %q", browsertest.Eval[string](p, html+`.innerHTML`))
		}
		if browsertest.Eval[bool](p, html+`.innerText.includes('ZX99-QUOTED') || `+jsVisible+`(`+html+`.querySelector('[data-sb-fold="quote"]'))`) {
			t.Error("the quoted history shows before it is asked for")
		}
		clickOn(t, p, "button", "Show quoted text")
		p.Wait("the quote unfolded", html+`.innerText.includes('ZX99-QUOTED') && `+jsVisible+`(`+html+`.querySelector('[data-sb-fold="quote"]'))`)
		if got := browsertest.Eval[string](p, `document.querySelector('#timeline .fold-toggle').getAttribute('aria-expanded')`); got != "true" {
			t.Errorf("aria-expanded %q after unfolding", got)
		}
		clickOn(t, p, "button", "Hide quoted text")
		p.Wait("the quote folded again", `!`+html+`.innerText.includes('ZX99-QUOTED')`)
	})

	t.Run("ScriptsNeverRun", func(t *testing.T) {
		html := `<p>Hello, I have a question about my invoice.</p>` +
			`<script>window.pwned = 'script'; document.title = 'pwned';</script>` +
			`<img src="/nonexistent.png" onerror="window.pwned = 'onerror'; document.title = 'pwned'" alt="logo">` +
			`<p><a id="evil" href="javascript:window.pwned = 'href'; document.title = 'pwned'; void 0">Download the invoice</a></p>` +
			`<p><a href=" JaVaScRiPt:window.pwned = 'href2'">Second link</a></p>` +
			`<div id="box" onclick="window.pwned = 'onclick'; document.title = 'pwned'">Click here to confirm</div>` +
			`<svg onload="window.pwned = 'svg'"><circle r="3"/></svg>` +
			`<iframe src="javascript:parent.pwned = 'iframe'"></iframe>` +
			`<form action="javascript:window.pwned = 'form'"><button id="go">Go</button></form>` +
			`<img src=x onerror=window.pwned=1>` +
			`<body onload="window.pwned = 'body'">` +
			`<meta http-equiv="refresh" content="0; url=javascript:window.pwned = 'meta'">`
		raw := e.mail("Mallory <mallory@example.net>", "Invoice question", "xss.1@example.net", `multipart/alternative; boundary="alt"`,
			"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, I have a question about my invoice.\r\n"+
				"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"+html+"\r\n--alt--\r\n")
		s := e.email(t, "xss.1@example.net", raw)
		p := ada.NewTab(t)
		// Record, before any page script, what the CSP had to block:
		// nothing should get that far.
		if _, err := chromedp.Call(p.Ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.sbViolations = []; document.addEventListener('securitypolicyviolation', e => window.sbViolations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')))`,
		}); err != nil {
			t.Fatal(err)
		}
		openConversation(p, base, s.res.ConversationID)
		msg := `document.querySelector('#timeline .email-html')`
		p.Wait("the e-mail", msg+`?.textContent.includes('a question about my invoice')`)
		p.Wait("the page loaded", `document.readyState === 'complete'`)
		title := browsertest.Eval[string](p, `document.title`)
		if !strings.HasSuffix(title, "· Switchboard") {
			t.Errorf("title %q", title)
		}
		check := func(when string) {
			t.Helper()
			// Let anything a click or a load queued run first.
			ctx, cancel := context.WithTimeout(p.Ctx, 10*time.Second)
			defer cancel()
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => setTimeout(() => r(true), 0)))`, chromedp.EvalAwaitPromise)); err != nil {
				t.Fatal(err)
			}
			if got := browsertest.Eval[string](p, `String(window.pwned)`); got != "undefined" {
				t.Errorf("%s: window.pwned = %q: the e-mail's script ran", when, got)
			}
			if got := browsertest.Eval[string](p, `document.title`); got != title {
				t.Errorf("%s: the title changed to %q", when, got)
			}
			if got := browsertest.Eval[string](p, `location.pathname`); got != "/conversations/"+s.res.ConversationID {
				t.Errorf("%s: the page went to %s", when, got)
			}
			if v := browsertest.Eval[[]string](p, `window.sbViolations || []`); len(v) > 0 {
				t.Errorf("%s: the CSP had to block what the sanitiser let through: %q", when, v)
			}
		}
		check("after loading")
		dangerous := browsertest.Eval[[]string](p, `[...document.querySelectorAll('#timeline .email-html, #timeline .email-html *')].flatMap(el =>
			[...el.attributes].filter(a => /^on/i.test(a.name) || /^\s*javascript:/i.test(a.value)).map(a => el.tagName + ' ' + a.name + '=' + a.value)
			.concat(/^(SCRIPT|IFRAME|OBJECT|EMBED|META|BASE|FORM)$/.test(el.tagName) ? [el.tagName] : []))`)
		if len(dangerous) > 0 {
			t.Errorf("the sanitised e-mail still holds %q", dangerous)
		}
		for _, link := range []string{"Download the invoice", "Second link"} {
			if browsertest.Eval[bool](p, `[...document.querySelectorAll('#timeline .email-html a')].some(a => a.textContent === `+strconv.Quote(link)+`)`) {
				p.Do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll('#timeline .email-html a')].find(a => a.textContent === ` + strconv.Quote(link) + `)`)))
			}
		}
		p.Do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll('#timeline .email-html *')].find(el => el.textContent === 'Click here to confirm')`)))
		check("after clicking")
	})

	t.Run("InboxChannels", func(t *testing.T) {
		e.tick()
		resp, err := http.Post(base+"/forms/contact", "application/json", strings.NewReader(`{"name":"Dev Patel","email":"dev@example.com","message":"Do you ship to Canada, and how long does it take?"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		e.waitStored(t, "the web form", func(s wsStored) bool { return s.in.Channel == switchboard.ChannelWebform })
		p := ada.NewTab(t)
		p.Do(chromedp.Navigate(base + "/?view=all&status=open"))
		p.Wait("the open conversations", `document.querySelectorAll('#inbox-rows tr[data-conversation]').length === 5`)
		if sheenaConv != "" {
			if got := browsertest.Eval[string](p, `[...document.querySelectorAll('#inbox-rows tr[data-conversation="`+sheenaConv+`"] .chs .ch')].map(c => c.getAttribute('aria-label')).sort().join(',')`); got != "E-mail,SMS,Voicemail,WhatsApp" {
				t.Errorf("Sheena's row shows the channels %q", got)
			}
		}
		p.Do(chromedp.Navigate(base + "/?view=all"))
		p.Wait("every conversation", `document.querySelectorAll('#inbox-rows tr[data-conversation]').length >= 6`)
		// A conversation a merge emptied has no last message: nothing to
		// attribute to "You".
		if bad := browsertest.Eval[[]string](p, `[...document.querySelectorAll('#inbox-rows .preview')].filter(td => td.querySelector('.you') && td.textContent.trim() === 'You:').map(td => td.closest('tr').innerText)`); len(bad) > 0 {
			t.Errorf("rows say \"You:\" of nothing: %q", bad)
		}
		p.Do(chromedp.Navigate(base + "/?view=all&status=open"))
		p.Wait("the open conversations", `document.querySelectorAll('#inbox-rows tr[data-conversation]').length === 5`)
		screenshot(t, p, "inbox.png")
	})

	t.Run("WhatsAppWindow", func(t *testing.T) {
		if sheenaConv == "" {
			t.Skip("needs LiveRow's conversation")
		}
		// 25 hours after Sheena's last WhatsApp message.
		e.clock.Advance(25 * time.Hour)
		p := ada.NewTab(t)
		openConversation(p, base, sheenaConv)
		setChannel(t, p, "whatsapp")
		p.Wait("the template picker", jsVisible+`(document.getElementById('template-fields')) && !`+jsVisible+`(`+jsReply+`)`)
		p.Wait("the template offered", `[...document.getElementById('template').options].some(o => o.textContent === 'order_update (en_US)')`)
		p.Wait("its parameter fields", `document.querySelectorAll('#template-params input').length === 2`)
		if n := roleCount(t, p, "textbox", "Reply"); n != 0 {
			t.Errorf("the Reply box is still offered (%d) outside the window", n)
		}
		if n := roleCount(t, p, "combobox", "Template"); n != 1 {
			t.Errorf("%d template pickers", n)
		}
		if got := browsertest.Eval[string](p, jsInfo+`.textContent`); !strings.Contains(got, "24-hour window is closed") || strings.Contains(got, "window closes in") {
			t.Errorf("the composer says %q", got)
		}
		p.Wait("Send enabled with a template", `!`+jsSend+`.disabled`)
		typeInto(t, p, "textbox", "Parameter {{1}}", "#1042")
		typeInto(t, p, "textbox", "Parameter {{2}}", "on its way")
		p.Wait("the preview", `document.getElementById('template-preview').textContent === 'Your order #1042 is on its way.'`)
		screenshot(t, p, "composer-template.png")

		// The API refuses free text as the composer does.
		var refused struct {
			Error struct{ Code, Message string }
		}
		if code := e.api(t, "POST", "/api/v1/conversations/"+sheenaConv+"/messages", map[string]string{"channel": "whatsapp", "text": "Still there?"}, &refused); code != http.StatusUnprocessableEntity || refused.Error.Code != "channel_policy" {
			t.Errorf("free text through the API: %d %+v, want 422 channel_policy", code, refused)
		}

		before := len(e.graph.WhatsAppSends())
		clickOn(t, p, "button", "Send")
		deadline := time.Now().Add(15 * time.Second)
		for len(e.graph.WhatsAppSends()) == before {
			if time.Now().After(deadline) {
				t.Fatalf("the template never reached the Graph stand-in; the composer says %q", browsertest.Eval[string](p, jsReason+`.textContent`))
			}
			time.Sleep(20 * time.Millisecond)
		}
		sent := e.graph.WhatsAppSends()[before]
		if sent.Type != "template" || sent.Template == nil || sent.Template.Name != wsTemplate || sent.To != wsSheena {
			t.Errorf("the Graph stand-in received %+v", sent)
		} else if !strings.Contains(string(sent.Body), `"#1042"`) || !strings.Contains(string(sent.Body), `"on its way"`) {
			t.Errorf("the template's parameters are not in the request: %s", sent.Body)
		}
		p.Wait("the template message in the timeline", `[...document.querySelectorAll('#timeline .msg-out .text')].some(m => m.textContent === 'Your order #1042 is on its way.')`)
	})

	// After InboxChannels, which counts the open conversations: this adds one.
	t.Run("EmailFormatting", func(t *testing.T) {
		s := e.email(t, "fmt.1@example.com", e.mail("Dana Fox <dana@example.com>", "Lid size", "fmt.1@example.com", "text/plain; charset=utf-8", "Which lid fits the 1.7 l kettle?\r\n"))
		p := ada.NewTab(t)
		openConversation(p, base, s.res.ConversationID)
		setChannel(t, p, "email")
		p.Wait("the formatting toolbar", jsVisible+`(document.getElementById('format-bar'))`)
		typeInto(t, p, "textbox", "Reply", "Thanks Dana, the _new_ lid fits. ")
		clickOn(t, p, "button", "Bold") // nothing selected: a bold placeholder
		p.Wait("the bold mark", `document.getElementById('reply').value.endsWith('**bold**')`)
		p.Wait("Send enabled", `!`+jsSend+`.disabled`)
		before := len(e.smtp.Messages())
		clickOn(t, p, "button", "Send")
		deadline := time.Now().Add(15 * time.Second)
		for len(e.smtp.Messages()) == before {
			if time.Now().After(deadline) {
				t.Fatalf("no mail reached the relay; the composer says %q", browsertest.Eval[string](p, jsReason+`.textContent`))
			}
			time.Sleep(20 * time.Millisecond)
		}
		raw := strings.ReplaceAll(string(e.smtp.Messages()[before].Raw), "=\r\n", "")
		for _, want := range []string{"text/html", "<em>new</em>", "<strong>bold</strong>", "the _new_ lid fits. **bold**"} {
			if !strings.Contains(raw, want) {
				t.Errorf("the mail lacks %q:\n%s", want, raw)
			}
		}
		// An internal note goes nowhere: no formatting is offered for it.
		p.Do(chromedp.Click(chromedp.CSS(`#note`)))
		p.Wait("no formatting toolbar for a note", `!`+jsVisible+`(document.getElementById('format-bar'))`)
	})

	t.Run("Admin", func(t *testing.T) {
		// An admin's agents page renders its forms; an agent's browser
		// gets the refusal, not the page.
		p := ada.NewTab(t)
		p.Do(chromedp.Navigate(base + "/admin/agents"))
		p.Wait("the agents' page", `[...document.querySelectorAll('main h3')].some(c => c.textContent.includes('Ben Okafor'))`)
		if n := roleCount(t, p, "button", "Create invitation link"); n != 1 {
			t.Errorf("%d invitation buttons on the agents' page", n)
		}
		screenshot(t, p, "admin.png")
		q := ben.NewTab(t)
		q.Do(chromedp.Navigate(base + "/admin/agents"))
		q.Wait("the refusal", `document.title.startsWith('Forbidden')`)
		if got := browsertest.Eval[bool](q, `document.querySelectorAll('main h3, main form').length > 0`); got {
			t.Error("an agent's browser shows the admin page's content")
		}
	})

	noPageErrors(t, ada)
	noPageErrors(t, ben)
}
