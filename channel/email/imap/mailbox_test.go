package imap

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw  string
		want Mailbox
	}{
		{"imap://joe:s3cret@mail.example.com/INBOX?processed=Processed&poll=30s", Mailbox{
			Name: "joe@mail.example.com/INBOX", Addr: "mail.example.com:143", Host: "mail.example.com",
			Username: "joe", Folder: "INBOX", Processed: "Processed", Poll: 30 * time.Second, TLS: StartTLSAuto, password: "s3cret",
		}},
		{"imaps://joe:s3cret@mail.example.com:993", Mailbox{
			Name: "joe@mail.example.com/INBOX", Addr: "mail.example.com:993", Host: "mail.example.com",
			Username: "joe", Folder: "INBOX", TLS: ImplicitTLS, password: "s3cret",
		}},
		{"imap://support%40acme.example:p%40ss%3Aword@127.0.0.1:1143/Support/Inbound?starttls=off&insecure=true", Mailbox{
			Name: "support@acme.example@127.0.0.1:1143/Support/Inbound", Addr: "127.0.0.1:1143", Host: "127.0.0.1",
			Username: "support@acme.example", Folder: "Support/Inbound", TLS: StartTLSOff, Insecure: true, password: "p@ss:word",
		}},
		{"imap://joe:pw@[::1]:143/INBOX?starttls=required", Mailbox{
			Name: "joe@::1/INBOX", Addr: "[::1]:143", Host: "::1", Username: "joe", Folder: "INBOX", TLS: StartTLSRequired, password: "pw",
		}},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseURL(%q)\n got %#v %q\nwant %#v %q", tt.raw, got, got.password, tt.want, tt.want.password)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []struct{ raw, want string }{
		{"http://joe:" + secret + "@h/INBOX", "scheme must be imap or imaps"},
		{"imap://joe:" + secret + "@/INBOX", "missing host"},
		{"imap://" + secret + "@h/INBOX", "missing password"},
		{"imap://:" + secret + "@h/INBOX", "missing user name"},
		{"imap://joe:" + secret + "@h:99999/INBOX", "bad port"},
		{"imap://joe:" + secret + "@h/INBOX?poll=soon", `poll "soon" is not a positive duration`},
		{"imap://joe:" + secret + "@h/INBOX?poll=-1s", `poll "-1s" is not a positive duration`},
		{"imap://joe:" + secret + "@h/INBOX?starttls=maybe", `starttls "maybe": want auto, required or off`},
		{"imaps://joe:" + secret + "@h/INBOX?starttls=off", "starttls applies to imap:// only"},
		{"imap://joe:" + secret + "@h/INBOX?insecure=perhaps", `insecure "perhaps" is not a boolean`},
		{"imap://joe:" + secret + "@h/INBOX?procesed=Done", `unknown parameter "procesed"`},
		{"imap://joe:" + secret + "@h/INBOX?processed=", "processed is empty"},
		{"imap://joe:" + secret + "@h/INBOX?processed=inbox", "processed folder is the folder read"},
		{"imap://joe:" + secret + "@h\x7f/INBOX", "invalid mailbox URL"},
		{"imap://joe:" + secret + "@h/INBOX?a=%zz", "query"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.raw)
		if err == nil {
			t.Errorf("ParseURL(%q): no error, want %q", tt.raw, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURL(%q) = %q, want it to contain %q", tt.raw, err, tt.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("ParseURL(%q) error shows the password: %q", tt.raw, err)
		}
	}
}

func TestMailboxNeverPrintsPassword(t *testing.T) {
	const secret = "hunter2-secret"
	mb, err := ParseURL("imap://joe:" + secret + "@mail.example.com/INBOX?processed=Done&poll=30s&insecure=true")
	if err != nil {
		t.Fatal(err)
	}
	const want = "imap://joe@mail.example.com:143/INBOX?insecure=true&poll=30s&processed=Done"
	if got := mb.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "mailbox", mb)
	for _, s := range []string{
		fmt.Sprint(mb), fmt.Sprintf("%v %+v %#v %s", mb, mb, mb, mb), fmt.Sprintf("%+v", []Mailbox{mb}), logged.String(),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("password printed: %s", s)
		}
		if !strings.Contains(s, want) {
			t.Errorf("%q does not show the redacted URL", s)
		}
	}
	again, err := ParseURL(strings.Replace(want, "joe@", "joe:"+secret+"@", 1))
	if err != nil || again != mb {
		t.Errorf("String() does not parse back to the mailbox: %v %#v", err, again)
	}
}
