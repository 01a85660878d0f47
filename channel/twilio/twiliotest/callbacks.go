package twiliotest

import (
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

// step is one status of a message's sequence.
type step struct {
	status    string
	errorCode int
}

// plan returns the status sequence for a message to to. Callers hold s.mu.
func (s *Server) plan(to string) []step {
	var out []step
	if s.undeliverable[to] {
		for _, st := range s.statuses {
			if isFinal(st) {
				break
			}
			out = append(out, step{status: st})
		}
		return append(out, step{StatusUndelivered, CodeUnreachableHandset})
	}
	for _, st := range s.statuses {
		code := 0
		if st == StatusUndelivered || st == StatusFailed {
			code = CodeUnknownDelivery
		}
		out = append(out, step{st, code})
	}
	return out
}

func isFinal(status string) bool {
	switch status {
	case StatusDelivered, StatusUndelivered, StatusFailed, "read", "canceled":
		return true
	}
	return false
}

// sendCallbacks posts m's status callbacks, one per step, in order unless
// shuffling. It runs in its own goroutine, counted by s.wg.
func (s *Server) sendCallbacks(m SentMessage, steps []step) {
	defer s.wg.Done()
	order := make([]int, len(steps))
	for i := range order {
		order[i] = i
	}
	if s.shuffle && len(order) > 1 {
		for slices.IsSorted(order) {
			rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
	}
	for _, i := range order {
		s.wait()
		s.postCallback(m, steps[i])
	}
}

// wait sleeps for the callback delay, or until Close.
func (s *Server) wait() {
	if s.delay <= 0 {
		return
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

// postCallback sends one status callback as Twilio does: form-encoded,
// signed over the callback URL without its fragment (Twilio's "#rc=...&
// rp=..." overrides are never sent), with a fresh idempotency token.
func (s *Server) postCallback(m SentMessage, st step) {
	target := stripFragment(m.StatusCallback)
	from := m.From
	if from == "" {
		from = DefaultPoolNumber
	}
	form := map[string][]string{
		"MessageSid":    {m.SID},
		"SmsSid":        {m.SID},
		"MessageStatus": {st.status},
		"SmsStatus":     {st.status},
		"AccountSid":    {s.accountSID},
		"From":          {from},
		"To":            {m.To},
		"ApiVersion":    {APIVersion},
	}
	if m.MessagingServiceSid != "" {
		form["MessagingServiceSid"] = []string{m.MessagingServiceSid}
	}
	if st.errorCode != 0 {
		form["ErrorCode"] = []string{strconv.Itoa(st.errorCode)}
	}
	wh := Webhook{
		URL:              target,
		Form:             form,
		Signature:        twilio.Sign(s.authToken, target, form),
		IdempotencyToken: newIdempotencyToken(),
	}
	cb := Callback{MessageSid: m.SID, URL: target, Form: cloneValues(form), Signature: wh.Signature}
	// Background: Close waits for callbacks under way rather than
	// cancelling them; the client's timeout bounds each one.
	resp, err := s.SendWebhook(context.Background(), s.client, wh)
	if err != nil {
		cb.Err = err
	} else {
		cb.StatusCode = resp.StatusCode
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}
	cb.At = s.now().UTC()
	s.mu.Lock()
	s.callbacks = append(s.callbacks, cb)
	s.mu.Unlock()
}

func stripFragment(u string) string {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		return u[:i]
	}
	return u
}

// newIdempotencyToken returns a value for I-Twilio-Idempotency-Token, which
// Twilio repeats when it retries a webhook.
func newIdempotencyToken() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
