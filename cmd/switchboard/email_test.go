package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// mailEnv runs a real Switchboard reading a folder of a real IMAP server
// and sending through a real SMTP server, whose mail for any address
// lands in that server's INBOX, where the test reads it back.
type mailEnv struct {
	smsEnv
	imapURL *url.URL
	folder  string
	smtpURL string
	dkim    *smtpout.DKIM
	keyFile string
	run     string // makes Message-IDs unique per run: the server outlives tests
	convID  string
}

const mailSecret = "test-inbound-email-secret"

func newMailEnv(t *testing.T, dataDir string) *mailEnv {
	t.Helper()
	imapURL := testenv.URL(t, testenv.IMAPURL, "IMAP")
	smtpURL := testenv.URL(t, testenv.SMTPURL, "SMTP")
	u, err := url.Parse(imapURL)
	if err != nil {
		t.Fatal(err)
	}
	e := &mailEnv{imapURL: u, smtpURL: smtpURL}
	e.t = t
	e.stored = make(chan int, 100)
	var b [6]byte
	rand.Read(b[:])
	e.run = hex.EncodeToString(b[:])
	e.folder = "e2e-" + e.run
	c := e.imap()
	if err := c.Create(e.folder, nil).Wait(); err != nil {
		t.Fatalf("create folder: %v", err)
	}
	c.Close()

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	if e.dkim, err = smtpout.LoadDKIM("acme.test", "sb", keyFile); err != nil {
		t.Fatal(err)
	}

	e.keyFile = keyFile
	e.start(dataDir)
	_, e.token = addAgent(t, e.m, switchboard.Agent{Name: "Sarah", Email: "sarah@team.example"})
	return e
}

// start runs Switchboard on dataDir, reading the env's folder.
func (e *mailEnv) start(dataDir string) {
	t := e.t
	t.Helper()
	mailbox := *e.imapURL
	mailbox.Path = "/" + e.folder
	mailbox.RawQuery = "processed=" + e.folder + "-done&starttls=off"
	addr := freeAddr(t)
	e.m = &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: dataDir, LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, ReopenWindow: 7 * 24 * time.Hour,
		EmailFrom: "Acme Support <support@acme.test>", SMTPURL: e.smtpURL + "?starttls=off", IMAPURLs: mailbox.String(), IMAPPoll: time.Second,
		InboundEmailSecret: mailSecret, DKIMSelector: "sb", DKIMKeyFile: e.keyFile,
	}}
	e.m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := e.m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := e.m
	t.Cleanup(func() { m.Close() })
}

func (e *mailEnv) imap() *imapclient.Client {
	e.t.Helper()
	c, err := dialIMAP(e.imapURL)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// dialIMAP logs in to the test IMAP server.
func dialIMAP(u *url.URL) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(u.Host, nil)
	if err != nil {
		return nil, fmt.Errorf("imap dial: %w", err)
	}
	pass, _ := u.User.Password()
	if err := c.Login(u.User.Username(), pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imap login: %w", err)
	}
	return c, nil
}

// deliver puts a raw mail in the folder Switchboard reads.
func (e *mailEnv) deliver(raw string) {
	e.t.Helper()
	c := e.imap()
	defer c.Close()
	cmd := c.Append(e.folder, int64(len(raw)), nil)
	cmd.Write([]byte(raw))
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		e.t.Fatalf("append: %v", err)
	}
}

// received waits for the mail with this Message-ID to arrive in INBOX
// through the SMTP server, and returns it as delivered.
func (e *mailEnv) received(messageID string) []byte {
	e.t.Helper()
	c := e.imap()
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			e.t.Fatal(err)
		}
		data, err := c.UIDSearch(&goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: messageID}}}, nil).Wait()
		if err != nil {
			e.t.Fatal(err)
		}
		if uids := data.AllUIDs(); len(uids) > 0 {
			section := &goimap.FetchItemBodySection{}
			msgs, err := c.Fetch(goimap.UIDSetNum(uids[0]), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{section}}).Collect()
			if err != nil || len(msgs) == 0 {
				e.t.Fatalf("fetch: %v", err)
			}
			return msgs[0].FindBodySection(section)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("mail %s never arrived", messageID)
	return nil
}

func (e *mailEnv) post(raw string) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.m.URL()+"/webhooks/email", strings.NewReader(raw))
	req.Header.Set("Content-Type", "message/rfc822")
	req.Header.Set("Authorization", "Bearer "+mailSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type mailConv struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Customer struct {
		ID string `json:"id"`
	} `json:"customer"`
	Messages []struct {
		ID         string                     `json:"id"`
		Direction  string                     `json:"direction"`
		Channel    string                     `json:"channel"`
		Sender     string                     `json:"sender"`
		Text       string                     `json:"text"`
		HTML       string                     `json:"html"`
		Status     switchboard.DeliveryStatus `json:"status"`
		Error      string                     `json:"error"`
		ProviderID string                     `json:"provider_id"`
	} `json:"messages"`
	Events []struct {
		Type switchboard.EventType `json:"type"`
		Data map[string]any        `json:"data"`
	} `json:"events"`
}

// conversation waits until pred holds for the test's one conversation.
func (e *mailEnv) conversation(pred func(c mailConv) bool) mailConv {
	e.t.Helper()
	var last mailConv
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if e.convID == "" {
			var list struct {
				Conversations []struct {
					ID string `json:"id"`
				} `json:"conversations"`
			}
			e.api("GET", "/api/v1/conversations?limit=20", nil, &list)
			if len(list.Conversations) > 1 {
				e.t.Fatalf("%d conversations, want one", len(list.Conversations))
			}
			if len(list.Conversations) == 1 {
				e.convID = list.Conversations[0].ID
			}
		}
		if e.convID != "" {
			last = mailConv{}
			e.api("GET", "/api/v1/conversations/"+e.convID, nil, &last)
			if pred(last) {
				return last
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("the conversation never got there; last seen: %+v", last)
	return last
}

// TestEmailEndToEnd holds the e-mail channel to the must-holds on
// real servers: IMAP in, SMTP out with DKIM, threading by header and by
// token, one copy of a mail however often it arrives, robots kept out.
func TestEmailEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	e := newMailEnv(t, dataDir)
	ann := "ann-" + e.run + "@customer.test"
	first := fmt.Sprintf("first.%s@customer.test", e.run)
	raw1 := fmt.Sprintf("From: Ann <%s>\r\nTo: support@acme.test\r\nSubject: Order 77 is late\r\nMessage-ID: <%s>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nWhere is my order? Merci d'avance, caf=E9 inclus.\r\n\r\n-- \r\nAnn\r\n", ann, first)

	// The same mail twice in the mailbox and once over HTTP: one message.
	e.deliver(raw1)
	e.deliver(raw1)
	if code := e.post(raw1); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	c := e.conversation(func(c mailConv) bool { return len(c.Messages) >= 1 })
	if c.Messages[0].Text != "Where is my order? Merci d'avance, café inclus." {
		t.Errorf("text = %q, want the new text alone, in UTF-8", c.Messages[0].Text)
	}
	time.Sleep(2 * time.Second) // let the fetcher see both copies
	if c = e.conversation(func(mailConv) bool { return true }); len(c.Messages) != 1 {
		t.Fatalf("%d messages from one mail fetched twice and posted once", len(c.Messages))
	}

	// The agent replies: the mail arrives DKIM-signed and threaded.
	var sent struct {
		ID string `json:"id"`
	}
	if code := e.api("POST", "/api/v1/conversations/"+c.ID+"/messages", map[string]any{"text": "It ships today."}, &sent); code != http.StatusAccepted {
		t.Fatalf("reply: %d", code)
	}
	ourID := "sb." + sent.ID + "@acme.test"
	out := e.received("<" + ourID + ">")
	verifications, err := dkim.VerifyWithOptions(bytes.NewReader(out), &dkim.VerifyOptions{LookupTXT: func(domain string) ([]string, error) {
		if domain != "sb._domainkey.acme.test" {
			return nil, fmt.Errorf("no record for %s", domain)
		}
		return []string{e.dkim.TXTRecord()}, nil
	}})
	if err != nil || len(verifications) != 1 || verifications[0].Err != nil {
		t.Errorf("DKIM on the delivered copy: %v %+v", err, verifications)
	}
	delivered, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	h := delivered.Header
	if h.Get("In-Reply-To") != "<"+first+">" || h.Get("Subject") != "Re: Order 77 is late" {
		t.Errorf("threading headers: In-Reply-To %q, Subject %q", h.Get("In-Reply-To"), h.Get("Subject"))
	}
	rt, err := mail.ParseAddress(h.Get("Reply-To"))
	if err != nil || !strings.HasPrefix(rt.Address, "support+c") || rt.Name != "Acme Support" {
		t.Fatalf("Reply-To %q: %v", h.Get("Reply-To"), err)
	}
	replyTo := rt.Address

	// The conversation is resolved; Ann replies from a client that drops
	// Reply-To but keeps In-Reply-To: the same conversation reopens.
	if code := e.api("POST", "/api/v1/conversations/"+c.ID+"/status", map[string]string{"status": "resolved"}, nil); code != http.StatusOK {
		t.Fatalf("resolve: %d", code)
	}
	e.deliver(fmt.Sprintf("From: Ann <%s>\r\nTo: support@acme.test\r\nSubject: Re: Order 77 is late\r\nMessage-ID: <r1.%s@customer.test>\r\nIn-Reply-To: <%s>\r\nReferences: <%s> <%s>\r\n\r\nGreat, thanks!\r\n\r\nOn Thu, Nov 26, 2026 at 10:05 AM Acme Support <support@acme.test> wrote:\r\n> It ships today.\r\n", ann, e.run, ourID, first, ourID))
	// And one that keeps only the token address, from a third address.
	e.deliver(fmt.Sprintf("From: Bob <bob-%s@office.test>\r\nTo: %s\r\nSubject: order 77\r\nMessage-ID: <r2.%s@office.test>\r\n\r\nI'm Ann's colleague; please also send the invoice.\r\n", e.run, replyTo, e.run))
	c = e.conversation(func(c mailConv) bool { return len(c.Messages) >= 4 })
	if c.Status != "open" {
		t.Errorf("status after the replies: %s, want open", c.Status)
	}
	texts := []string{}
	for _, m := range c.Messages {
		texts = append(texts, m.Text)
	}
	// The two mails arrive together and may be stored in one batch at one
	// time, so their order between themselves is not fixed.
	if len(texts) != 4 || !slices.Contains(texts[2:], "Great, thanks!") || !slices.Contains(texts[2:], "I'm Ann's colleague; please also send the invoice.") {
		t.Errorf("thread = %q", texts)
	}

	// An out-of-office and a bounce: no customer message, no reply sent,
	// and the bounced mail marked failed with its status.
	e.deliver(fmt.Sprintf("From: Ann <%s>\r\nTo: %s\r\nSubject: Automatic reply: Re: Order 77 is late\r\nMessage-ID: <ooo.%s@customer.test>\r\nIn-Reply-To: <%s>\r\nAuto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n\r\nI am out of the office until Monday.\r\n", ann, replyTo, e.run, ourID))
	e.deliver(fmt.Sprintf("From: MAILER-DAEMON@mx.customer.test (Mail Delivery System)\r\nTo: support@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn.%s@mx.customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@acme.test\r\nMessage-ID: <%s>\r\nSubject: Re: Order 77 is late\r\n\r\n--r--\r\n", e.run, ann, ourID))
	// The answer reads the messages, then the log: polled while the
	// bounce commits, it may show the log's entry before the message's
	// new status, so both are waited for.
	c = e.conversation(func(c mailConv) bool {
		var auto, bounce, failed bool
		for _, ev := range c.Events {
			auto = auto || ev.Type == switchboard.EventAutoReply
			bounce = bounce || ev.Type == switchboard.EventBounce
		}
		for _, m := range c.Messages {
			failed = failed || m.Direction == "out" && m.Status == switchboard.DeliveryFailed
		}
		return auto && bounce && failed
	})
	if len(c.Messages) != 4 {
		t.Errorf("%d messages after an out-of-office and a bounce, want 4", len(c.Messages))
	}
	if m := c.Messages[1]; m.Direction != "out" || m.Status != switchboard.DeliveryFailed || !strings.HasPrefix(m.Error, "5.1.1") {
		t.Errorf("bounced reply: %s %s %q", m.Direction, m.Status, m.Error)
	}

	// A web form from the same address joins the same conversation.
	resp, err := http.Post(e.m.URL()+"/forms/contact", "application/json", strings.NewReader(`{"name":"Ann","email":"`+strings.ToUpper(ann[:1])+ann[1:]+`","message":"Also: can I change the address?"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c = e.conversation(func(c mailConv) bool { return len(c.Messages) >= 5 })
	if c.Messages[4].Channel != "webform" {
		t.Errorf("web form message: %+v", c.Messages[4])
	}

	// A restart reads on from where it stopped: nothing fetched twice.
	e.m.Close()
	e.start(dataDir)
	e.deliver(fmt.Sprintf("From: Ann <%s>\r\nTo: support@acme.test\r\nSubject: one more\r\nMessage-ID: <late.%s@customer.test>\r\n\r\nOne more thing.\r\n", ann, e.run))
	c = e.conversation(func(c mailConv) bool { return len(c.Messages) >= 6 })
	time.Sleep(2 * time.Second)
	if c = e.conversation(func(mailConv) bool { return true }); len(c.Messages) != 6 {
		t.Errorf("%d messages after a restart, want 6", len(c.Messages))
	}
}

// TestEmailWebhookKeepsLargeOriginal posts a mail with a 300 KB attachment
// to /webhooks/email: its original is served back byte for byte (from the
// object store) and the attachment is stored with its sniffed type.
func TestEmailWebhookKeepsLargeOriginal(t *testing.T) {
	m, stored := mailBenchMain(t, "")
	e := &smsEnv{t: t, m: m}
	_, e.token = addAgent(t, m, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 300<<10)...)
	var b64 strings.Builder
	enc := base64.NewEncoder(base64.StdEncoding, &b64)
	enc.Write(png)
	enc.Close()
	var body strings.Builder
	for s := b64.String(); len(s) > 0; {
		n := min(76, len(s))
		body.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	raw := "From: Ann <ann@example.com>\r\nTo: support@acme.test\r\nSubject: photo\r\nMessage-ID: <big.1@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nHere is the photo of the damage.\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"damage.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body.String() + "--b--\r\n"
	req, _ := http.NewRequest("POST", m.URL()+"/webhooks/email", strings.NewReader(raw))
	req.Header.Set("Content-Type", "message/rfc822")
	req.Header.Set("Authorization", "Bearer "+mailSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %v %v", err, resp)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(10 * time.Second); stored.Load() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not stored")
		}
	}
	var list struct {
		Conversations []struct{ ID string } `json:"conversations"`
	}
	e.api("GET", "/api/v1/conversations", nil, &list)
	var c struct {
		Messages []struct {
			ID          string `json:"id"`
			Text        string `json:"text"`
			Attachments []struct {
				URL         string `json:"url"`
				ContentType string `json:"content_type"`
				Size        int    `json:"size"`
				Name        string `json:"name"`
			} `json:"attachments"`
		} `json:"messages"`
	}
	e.api("GET", "/api/v1/conversations/"+list.Conversations[0].ID, nil, &c)
	msg := c.Messages[0]
	if msg.Text != "Here is the photo of the damage." || len(msg.Attachments) != 1 {
		t.Fatalf("message = %+v", msg)
	}
	if a := msg.Attachments[0]; a.ContentType != "image/png" || a.Size != len(png) || a.Name != "damage.png" {
		t.Errorf("attachment = %+v", a)
	}
	req, _ = http.NewRequest("GET", m.URL()+"/api/v1/messages/"+msg.ID+"/original", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "message/rfc822" || string(got) != raw {
		t.Errorf("original: %d %s, %d bytes (want %d, identical)", resp.StatusCode, resp.Header.Get("Content-Type"), len(got), len(raw))
	}
}
