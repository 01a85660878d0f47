package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard/channel/email/smtptest"
)

const (
	demoMailSecret = "demo-inbound-email-secret"
	demoMailFrom   = "Switchboard Demo <support@switchboard.demo>"
)

// demoMail plays the customers' side of e-mail: it posts their mail to
// /webhooks/email as an inbound-mail service would, and receives our
// replies on a local SMTP stand-in, where some customers answer them
// (threaded by In-Reply-To and the Reply-To token) and some are away
// (an RFC 3834 out-of-office, which must never become a message).
type demoMail struct {
	ctx  context.Context
	log  *slog.Logger
	base string
	smtp *smtptest.Server

	mu  sync.Mutex
	rng *rand.Rand
	wg  sync.WaitGroup
}

func startDemoMail(ctx context.Context, log *slog.Logger, base string) (*demoMail, error) {
	d := &demoMail{ctx: ctx, log: log, base: base, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	s, err := smtptest.Start(d.received)
	if err != nil {
		return nil, err
	}
	d.smtp = s
	return d, nil
}

// Close stops the stand-in and waits for pending customer replies.
func (d *demoMail) Close() {
	d.smtp.Close()
	d.wg.Wait()
}

func (d *demoMail) intn(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.IntN(n)
}

// received is called for each mail our server sends.
func (d *demoMail) received(m smtptest.Message) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		d.log.Warn("demo: unreadable outbound mail", "err", err)
		return
	}
	h := msg.Header
	d.log.Info("demo: reply delivered by the local SMTP stand-in", "to", strings.Join(m.To, ","), "subject", h.Get("Subject"), "dkim", h.Get("DKIM-Signature") != "")
	if h.Get("Auto-Submitted") != "" {
		return // customers' mail systems do not answer automatic mail
	}
	to, replyTo := m.To[0], h.Get("Reply-To")
	if a, err := mail.ParseAddress(replyTo); err == nil {
		replyTo = a.Address
	}
	id := h.Get("Message-ID")
	refs := strings.TrimSpace(h.Get("References") + " " + id)
	var raw string
	switch d.intn(6) {
	case 0:
		raw = fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Automatic reply: %s\r\nMessage-ID: <ooo.%d@customer.example>\r\nIn-Reply-To: %s\r\nAuto-Submitted: auto-replied\r\n\r\nI'm out of the office until Monday.\r\n",
			to, replyTo, h.Get("Subject"), time.Now().UnixNano(), id)
	case 1, 2:
		// A reply from a client that keeps the thread headers and quotes us.
		raw = fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <r.%d@customer.example>\r\nIn-Reply-To: %s\r\nReferences: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThank you, that helps!\r\n\r\nOn %s, Switchboard Demo wrote:\r\n> %s\r\n",
			to, replyTo, h.Get("Subject"), time.Now().UnixNano(), id, refs, time.Now().Format("Mon, Jan 2, 2006 at 3:04 PM"), "(your reply)")
	default:
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(time.Duration(1+d.intn(3)) * time.Second):
		}
		d.post(raw)
	}()
}

// send posts a new mail from a customer.
func (d *demoMail) send(c demoCustomer, subject, body string) {
	raw := fmt.Sprintf("From: %s <%s>\r\nTo: support@switchboard.demo\r\nSubject: %s\r\nMessage-ID: <n.%d@customer.example>\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\n-- \r\n%s\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>%s</p><p>-- <br>%s</p><script>alert('never runs')</script>\r\n--b--\r\n",
		c.Name, c.Email, subject, time.Now().UnixNano(), time.Now().Format(time.RFC1123Z), body, c.Name, body, c.Name)
	d.post(raw)
}

func (d *demoMail) post(raw string) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, d.base+"/webhooks/email", strings.NewReader(raw))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "message/rfc822")
	req.Header.Set("Authorization", "Bearer "+demoMailSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if d.ctx.Err() == nil {
			d.log.Warn("demo: post e-mail", "err", err)
		}
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		d.log.Warn("demo: e-mail webhook refused", "status", resp.StatusCode)
	}
}
