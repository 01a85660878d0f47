package smtpout_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

// scriptedRelay is an SMTP server speaking from a script: replies maps a
// command verb (EHLO, AUTH, MAIL, RCPT, DATA, and "." for the end of the
// data) to the raw reply lines; the rest get a plain success. banner is
// the greeting.
func scriptedRelay(t *testing.T, banner string, replies map[string]string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	defaults := map[string]string{
		"EHLO": "250-relay.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME",
		"AUTH": "235 2.7.0 Authentication successful",
		"MAIL": "250 2.1.0 Ok",
		"RCPT": "250 2.1.5 Ok",
		"DATA": "354 End data with <CR><LF>.<CR><LF>",
		".":    "250 2.0.0 Ok: queued as 4F2B",
		"QUIT": "221 2.0.0 Bye",
		"RSET": "250 2.0.0 Ok",
		"NOOP": "250 2.0.0 Ok",
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				reply := func(verb string) {
					r, ok := replies[verb]
					if !ok {
						r, ok = defaults[verb]
					}
					if !ok {
						r = "502 5.5.2 Error: command not recognized"
					}
					io.WriteString(c, r+"\r\n")
				}
				io.WriteString(c, banner+"\r\n")
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
					verb = strings.ToUpper(verb)
					reply(verb)
					switch {
					case verb == "QUIT":
						return
					case verb == "DATA" && strings.HasPrefix(replies["DATA"]+defaults["DATA"], "354"):
						for {
							l, err := br.ReadString('\n')
							if err != nil {
								return
							}
							if l == ".\r\n" {
								break
							}
						}
						reply(".")
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestReply(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"},
			"535 5.7.8 Authentication credentials invalid"},
		{fmt.Errorf("smtp h: rcpt to <a@b.example>: %w", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "<a@b.example>: Relay access denied"}),
			"554 5.7.1 <a@b.example>: Relay access denied"},
		{&smtp.SMTPError{Code: 421, Message: "Service not available"}, "421 Service not available"},
		{&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user\nSee https://help.example/550"},
			"550-5.1.1 No such user\n550 5.1.1 See https://help.example/550"},
		{errors.New("dial tcp: connection refused"), ""},
		{nil, ""},
	} {
		if got := smtpout.Reply(tc.err); got != tc.want {
			t.Errorf("Reply(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Stage and Reply read, from Send's own errors, where the session failed
// and what the relay said, word for word.
func TestStageAndReplyFromSend(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	const pass = "s3cret-Pa55"
	for _, tc := range []struct {
		name      string
		banner    string
		replies   map[string]string
		addr      string
		stage     string
		reply     string
		permanent bool
	}{
		{name: "ok"},
		{name: "closed port", addr: closedAddr, stage: smtpout.StageDial},
		{name: "banner refused", banner: "554 5.7.1 Your IP is blocked", stage: smtpout.StageEHLO, reply: "554 5.7.1 Your IP is blocked"},
		{name: "auth", replies: map[string]string{"AUTH": "535 5.7.8 Authentication credentials invalid"},
			stage: smtpout.StageAuth, reply: "535 5.7.8 Authentication credentials invalid"},
		{name: "sender", replies: map[string]string{"MAIL": "553 5.7.1 <help@shop.example>: Sender address rejected: not owned by user agent"},
			stage: smtpout.StageMailFrom, reply: "553 5.7.1 <help@shop.example>: Sender address rejected: not owned by user agent"},
		{name: "relay", replies: map[string]string{"RCPT": "554 5.7.1 <c@example.org>: Relay access denied"},
			stage: "rcpt to <c@example.org>", reply: "554 5.7.1 <c@example.org>: Relay access denied"},
		{name: "data", replies: map[string]string{".": "550-5.7.1 Message rejected as spam\r\n550 5.7.1 See https://help.example"},
			stage: smtpout.StageData, reply: "550-5.7.1 Message rejected as spam\n550 5.7.1 See https://help.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr
			if addr == "" {
				banner := tc.banner
				if banner == "" {
					banner = "220 relay.test ESMTP"
				}
				addr = scriptedRelay(t, banner, tc.replies)
			}
			c, err := smtpout.New(smtpout.Config{
				URL:     "smtp://agent:" + pass + "@" + addr + "?starttls=off",
				Timeout: 10 * time.Second,
				Logger:  slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(context.Background(), smtpout.Mail{
				From:      smtpout.Address{Addr: "help@shop.example"},
				To:        []smtpout.Address{{Addr: "c@example.org"}},
				Subject:   "s",
				MessageID: "m.stage@shop.example",
				Text:      "t\n",
			})
			if tc.stage == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if c.Stage(nil) != "" || smtpout.Reply(nil) != "" {
					t.Error("Stage or Reply of nil")
				}
				return
			}
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if got := c.Stage(err); got != tc.stage {
				t.Errorf("Stage = %q, want %q (err %v)", got, tc.stage, err)
			}
			if got := smtpout.Reply(err); got != tc.reply {
				t.Errorf("Reply = %q, want %q", got, tc.reply)
			}
			if strings.Contains(err.Error(), pass) {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}

	// Errors from outside a session have no stage.
	c, err := smtpout.New(smtpout.Config{URL: "smtp://127.0.0.1:1?starttls=off"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(context.Background(), smtpout.Mail{From: smtpout.Address{Addr: "not an address"}, MessageID: "m@x.example", Text: "t"})
	if err == nil || c.Stage(err) != "" {
		t.Errorf("invalid mail: err %v, stage %q", err, c.Stage(err))
	}
	if got := c.Stage(errors.New("smtp 127.0.0.1: bogus: x")); got != "" {
		t.Errorf("Stage of an unknown stage = %q", got)
	}
}
