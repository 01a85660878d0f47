package whatsapp

import (
	"strconv"
	"strings"
	"time"
)

// Window is the customer-service window: each message from the user
// (re)opens it, and free-form messages may be sent only inside it.
const Window = 24 * time.Hour

// WindowEnds returns when the window opened by the user's last message
// closes; the zero time when there was none.
func WindowEnds(lastInbound time.Time) time.Time {
	if lastInbound.IsZero() {
		return time.Time{}
	}
	return lastInbound.Add(Window)
}

// CanSendFreeForm reports whether a free-form (non-template) message may
// be sent at now. Outside the window only approved templates may be sent;
// the API would accept the message and fail it later with 131047.
func CanSendFreeForm(lastInbound, now time.Time) bool {
	return !lastInbound.IsZero() && now.Before(WindowEnds(lastInbound))
}

// RenderTemplate substitutes params into a template body with {{1}}-style
// placeholders, as WhatsApp will show it, so that the stored copy of an
// outbound template matches what the customer sees.
//
// The placeholders must be exactly {{1}}…{{n}} (each may repeat; none may
// be skipped) and len(params) must be n: WhatsApp rejects a send with a
// different count. Each parameter must be non-empty and free of newlines,
// tabs and runs of more than four spaces, which WhatsApp also refuses.
// Named placeholders ({{name}}) are not supported. A "{{" without a
// closing "}}" is literal text.
func RenderTemplate(body string, params []string) (string, error) {
	type span struct{ start, end, n int }
	var spans []span
	maxN := 0
	for i := 0; i < len(body); {
		open := strings.Index(body[i:], "{{")
		if open < 0 {
			break
		}
		open += i
		closing := strings.Index(body[open+2:], "}}")
		if closing < 0 {
			break
		}
		closing += open + 2
		inner := body[open+2 : closing]
		n, err := strconv.Atoi(inner)
		if err != nil || n < 1 || inner[0] == '0' || inner[0] == '+' {
			return "", invalid("template placeholder {{%s}} is not a positive number", inner)
		}
		spans = append(spans, span{open, closing + 2, n})
		maxN = max(maxN, n)
		i = closing + 2
	}
	seen := make([]bool, maxN+1)
	for _, s := range spans {
		seen[s.n] = true
	}
	for n := 1; n <= maxN; n++ {
		if !seen[n] {
			return "", invalid("template skips placeholder {{%d}} (it uses up to {{%d}})", n, maxN)
		}
	}
	if len(params) != maxN {
		return "", invalid("template has %d placeholders but %d parameters were given", maxN, len(params))
	}
	for i, p := range params {
		if err := checkParam(i+1, p); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	last := 0
	for _, s := range spans {
		b.WriteString(body[last:s.start])
		b.WriteString(params[s.n-1])
		last = s.end
	}
	b.WriteString(body[last:])
	return b.String(), nil
}

// checkParam applies WhatsApp's rules for a body parameter's text.
func checkParam(n int, p string) error {
	switch {
	case strings.TrimSpace(p) == "":
		return invalid("template parameter {{%d}} is empty", n)
	case strings.ContainsAny(p, "\n\r\t"):
		return invalid("template parameter {{%d}} contains a newline or tab, which WhatsApp refuses", n)
	case strings.Contains(p, "     "):
		return invalid("template parameter {{%d}} has more than four spaces in a row, which WhatsApp refuses", n)
	}
	return nil
}
