package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// benchMail is a typical customer reply: text and HTML alternatives, a
// quoted history and a signature, about 4 KB.
func benchMail(run string, i int) string {
	quote := strings.Repeat("> Thanks for your patience while we look into the order and the refund you asked about.\r\n", 12)
	html := strings.Repeat("<p>Thanks for your patience while we look into the order and the refund you asked about.</p>", 12)
	return fmt.Sprintf("From: Customer %d <c%d-%s@customer.test>\r\nTo: support@acme.test\r\nSubject: Re: order %d\r\n"+
		"Message-ID: <b%d.%s@customer.test>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"+
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nStill waiting for order %d, can you check?\r\n\r\nOn Wed, Nov 25, 2026 at 9:00 AM Acme <support@acme.test> wrote:\r\n%s\r\n-- \r\nCustomer %d\r\n"+
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<div dir=\"ltr\">Still waiting for order %d, can you check?</div><div class=\"gmail_quote\">%s</div>\r\n--alt--\r\n",
		i%500, i%500, run, i, i, run, i, quote, i%500, i, html)
}

// mailBenchMain runs an embedded Switchboard that counts stored messages.
func mailBenchMain(b testing.TB, imapURLs string) (*Main, *atomic.Int64) {
	b.Helper()
	var stored atomic.Int64
	addr := freeAddr(b)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: b.TempDir(), LogLevel: "error", LogFormat: "text",
		IngestBatch: 256, OutboxMaxAttempts: 3, EmailFrom: "Acme <support@acme.test>",
		InboundEmailSecret: mailSecret, IMAPURLs: imapURLs, IMAPPoll: time.Second, RoutingOff: true,
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) {
		for _, r := range res {
			if r.Err == nil && !r.Duplicate {
				stored.Add(1)
			}
		}
	}
	if err := m.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m, &stored
}

func waitStored(b testing.TB, stored *atomic.Int64, n int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for stored.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("stored %d of %d", stored.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkEmailHTTP measures mail posted to /webhooks/email, parsed,
// queued and stored (embedded SQLite), from the first post to the last
// message stored, with 8 concurrent posters.
func BenchmarkEmailHTTP(b *testing.B) {
	m, stored := mailBenchMain(b, "")
	run := fmt.Sprint(time.Now().UnixNano())
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = benchMail(run, i)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				req, _ := http.NewRequest("POST", m.URL()+"/webhooks/email", strings.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "message/rfc822")
				req.Header.Set("Authorization", "Bearer "+mailSecret)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitStored(b, stored, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkEmailIMAP measures mail fetched from a real IMAP server
// (Dovecot), parsed, queued and stored, from start-up (connect, log in)
// to the last message stored. The mail is appended before the clock starts.
func BenchmarkEmailIMAP(b *testing.B) {
	imapURL := testenv.URL(b, testenv.IMAPURL, "IMAP")
	u, err := url.Parse(imapURL)
	if err != nil {
		b.Fatal(err)
	}
	run := fmt.Sprint(time.Now().UnixNano())
	folder := "bench-" + run
	c, err := dialIMAP(u)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Create(folder, nil).Wait(); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		raw := benchMail(run, i)
		cmd := c.Append(folder, int64(len(raw)), nil)
		cmd.Write([]byte(raw))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	mailbox := *u
	mailbox.Path = "/" + folder
	mailbox.RawQuery = "starttls=off"
	b.ResetTimer()
	start := time.Now()
	_, stored := mailBenchMain(b, mailbox.String())
	waitStored(b, stored, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
