package whatsapp

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

func TestWindow(t *testing.T) {
	last := time.Date(2025, 6, 8, 20, 59, 43, 0, time.UTC)
	if got, want := WindowEnds(last), last.Add(24*time.Hour); !got.Equal(want) {
		t.Fatalf("WindowEnds = %v, want %v", got, want)
	}
	if !WindowEnds(time.Time{}).IsZero() {
		t.Fatal("WindowEnds of no inbound message is not zero")
	}
	tests := []struct {
		name string
		last time.Time
		now  time.Time
		want bool
	}{
		{"just received", last, last, true},
		{"an hour in", last, last.Add(time.Hour), true},
		{"last second", last, last.Add(24*time.Hour - time.Second), true},
		{"exactly 24 h", last, last.Add(24 * time.Hour), false},
		{"a day and a bit", last, last.Add(25 * time.Hour), false},
		{"never wrote", time.Time{}, last, false},
		{"clock skew: inbound after now", last.Add(time.Minute), last, true},
	}
	for _, tt := range tests {
		if got := CanSendFreeForm(tt.last, tt.now); got != tt.want {
			t.Errorf("%s: CanSendFreeForm = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRenderTemplate(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		params []string
		want   string
		err    string
	}{
		{name: "documented", body: "Your order {{1}} has shipped.", params: []string{"#1042"}, want: "Your order #1042 has shipped."},
		{name: "two in order", body: "Hi {{1}}, order {{2}} is on its way.", params: []string{"Sheena", "#1042"}, want: "Hi Sheena, order #1042 is on its way."},
		{name: "out of order and repeated", body: "{{2}} for {{1}} ({{2}})", params: []string{"Sheena", "#1042"}, want: "#1042 for Sheena (#1042)"},
		{name: "no placeholders", body: "Thanks for reaching out!", want: "Thanks for reaching out!"},
		{name: "param looks like a placeholder", body: "Code: {{1}}", params: []string{"{{2}}"}, want: "Code: {{2}}"},
		{name: "unclosed braces are literal", body: "Use {{ to open", want: "Use {{ to open"},
		{name: "markup kept", body: "<b>{{1}}</b> & co", params: []string{"A&B"}, want: "<b>A&B</b> & co"},
		{name: "too few params", body: "Hi {{1}}, order {{2}}", params: []string{"Sheena"}, err: "2 placeholders but 1 parameters"},
		{name: "too many params", body: "Hi {{1}}", params: []string{"a", "b"}, err: "1 placeholders but 2 parameters"},
		{name: "params for none", body: "Hello", params: []string{"a"}, err: "0 placeholders but 1 parameters"},
		{name: "skipped placeholder", body: "{{1}} and {{3}}", params: []string{"a", "b", "c"}, err: "skips placeholder {{2}}"},
		{name: "starts at 2", body: "{{2}}", params: []string{"a", "b"}, err: "skips placeholder {{1}}"},
		{name: "zero", body: "{{0}}", err: "{{0}} is not a positive number"},
		{name: "leading zero", body: "{{01}}", params: []string{"a"}, err: "{{01}} is not a positive number"},
		{name: "named", body: "Hi {{first_name}}", params: []string{"a"}, err: "{{first_name}} is not a positive number"},
		{name: "spaces inside", body: "Hi {{ 1 }}", params: []string{"a"}, err: "{{ 1 }} is not a positive number"},
		{name: "empty param", body: "Hi {{1}}", params: []string{" "}, err: "parameter {{1}} is empty"},
		{name: "newline param", body: "Hi {{1}}", params: []string{"a\nb"}, err: "parameter {{1}} contains a newline or tab"},
		{name: "tab param", body: "Hi {{1}}", params: []string{"a\tb"}, err: "newline or tab"},
		{name: "five spaces", body: "Hi {{1}}", params: []string{"a     b"}, err: "more than four spaces"},
		{name: "four spaces ok", body: "Hi {{1}}", params: []string{"a    b"}, want: "Hi a    b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderTemplate(tt.body, tt.params)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || switchboard.ErrorCode(err) != switchboard.EINVALID {
					t.Fatalf("RenderTemplate = %q, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("RenderTemplate = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
