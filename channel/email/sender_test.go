package email

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

type fakeMailer struct{ sent []smtpout.Mail }

func (f *fakeMailer) Send(_ context.Context, m smtpout.Mail) ([]byte, error) {
	f.sent = append(f.sent, m)
	return smtpout.Build(m)
}

type fakeThreads struct {
	thread switchboard.EmailThread
	autos  map[string]string // address -> message
}

func (f *fakeThreads) EmailThread(context.Context, string) (switchboard.EmailThread, error) {
	return f.thread, nil
}

func (f *fakeThreads) TryAutoMail(_ context.Context, addr, messageID string, _ time.Duration) (bool, error) {
	if m, ok := f.autos[addr]; ok && m != messageID {
		return false, nil
	}
	f.autos[addr] = messageID
	return true, nil
}

func TestSenderThreadsTheReply(t *testing.T) {
	mailer := &fakeMailer{}
	threads := &fakeThreads{thread: switchboard.EmailThread{Subject: "Café order", InReplyTo: "abc@example.com", References: []string{"first@example.com", "abc@example.com"}}, autos: map[string]string{}}
	blobs := &memBlobs{}
	blobs.Put(context.Background(), "uploads/a.pdf", strings.NewReader("%PDF-1.4 test"), 13, "application/pdf")
	s := NewSender(SenderConfig{Mailer: mailer, From: smtpout.Address{Name: "Acme", Addr: "support@acme.test"}, Tokens: testTokens, Threads: threads, Blobs: blobs})
	out := &switchboard.Outbound{
		MessageID: "m42", ConversationID: "conv42", Channel: switchboard.ChannelEmail,
		To:          []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+14155550100"}, {Kind: switchboard.IdentityEmail, Value: "ann@example.com"}},
		Text:        "Hello Ann,\n\nIt ships <today>.",
		Metadata:    []byte(`{"cc":["bob@example.com"],"bcc":["audit@acme.test"]}`),
		Attachments: []switchboard.Attachment{{Key: "uploads/a.pdf", Name: "invoice.pdf", ContentType: "application/pdf", Size: 13}},
	}
	id, err := s.Send(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if id != "sb.m42@acme.test" || id != s.MessageID("m42") {
		t.Errorf("provider id = %q", id)
	}
	m := mailer.sent[0]
	if m.To[0].Addr != "ann@example.com" || m.Cc[0].Addr != "bob@example.com" || m.Bcc[0].Addr != "audit@acme.test" {
		t.Errorf("recipients = %+v %+v %+v", m.To, m.Cc, m.Bcc)
	}
	if m.Subject != "Re: Café order" || m.InReplyTo != "abc@example.com" || strings.Join(m.References, " ") != "first@example.com abc@example.com" {
		t.Errorf("threading = %q %q %v", m.Subject, m.InReplyTo, m.References)
	}
	if id, ok := testTokens.Conversation(m.ReplyTo[0].Addr); !ok || id != "conv42" {
		t.Errorf("Reply-To %q does not name the conversation", m.ReplyTo[0].Addr)
	}
	if m.HTML != "<p>Hello Ann,</p>\n<p>It ships &lt;today&gt;.</p>\n" {
		t.Errorf("html alternative = %q", m.HTML)
	}
	if len(m.Attachments) != 1 || string(m.Attachments[0].Data) != "%PDF-1.4 test" || m.Auto {
		t.Errorf("attachments/auto = %+v %v", m.Attachments, m.Auto)
	}

	// Automatic mail: marked, and at most one per address per window.
	auto := *out
	auto.Metadata = []byte(`{"auto":true}`)
	auto.Attachments = nil
	if _, err := s.Send(context.Background(), &auto); err != nil || !mailer.sent[1].Auto {
		t.Fatalf("auto send: %v, auto=%v", err, mailer.sent[1].Auto)
	}
	if _, err := s.Send(context.Background(), &auto); err != nil || len(mailer.sent) != 3 {
		t.Errorf("a retried automatic mail: err=%v, sent=%d", err, len(mailer.sent))
	}
	another := auto
	another.MessageID = "m43"
	if _, err := s.Send(context.Background(), &another); !switchboard.IsPermanent(err) || len(mailer.sent) != 3 {
		t.Errorf("second automatic mail within the window: err=%v, sent=%d", err, len(mailer.sent))
	}
	noMail := *out
	noMail.To = noMail.To[:1]
	if _, err := s.Send(context.Background(), &noMail); !switchboard.IsPermanent(err) {
		t.Errorf("no address: %v", err)
	}
}

func TestSenderSurvivesOddThreadHeaders(t *testing.T) {
	mailer := &fakeMailer{}
	threads := &fakeThreads{thread: switchboard.EmailThread{Subject: "hello\x1bworld\r\nBcc: x@y", InReplyTo: "abc:def@example.com", References: []string{"20240101123456.GA1234", "ok@example.com"}}, autos: map[string]string{}}
	s := NewSender(SenderConfig{Mailer: mailer, From: smtpout.Address{Addr: "support@acme.test"}, Threads: threads})
	_, err := s.Send(context.Background(), &switchboard.Outbound{MessageID: "m1", ConversationID: "c1", Text: "hi",
		To: []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: "ann@example.com"}}})
	if err != nil {
		t.Fatalf("a reply failed on the customer's odd headers: %v", err)
	}
	m := mailer.sent[0]
	if m.Subject != "Re: hello world  Bcc: x@y" || m.InReplyTo != "" || strings.Join(m.References, " ") != "ok@example.com" {
		t.Errorf("subject %q, in-reply-to %q, references %v", m.Subject, m.InReplyTo, m.References)
	}
}

func TestSenderPolicy(t *testing.T) {
	s := NewSender(SenderConfig{From: smtpout.Address{Addr: "support@acme.test"}})
	r := switchboard.Recipient{Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: "ann@example.com"}}}
	now := time.Now()
	if d := s.Check(r, switchboard.Draft{Channel: switchboard.ChannelEmail, Text: "hi"}, now); !d.Allowed || d.Details["to"] != "ann@example.com" {
		t.Errorf("plain reply: %+v", d)
	}
	big := []switchboard.Attachment{{Size: 20 << 20}, {Size: 6 << 20}}
	if d := s.Check(r, switchboard.Draft{Channel: switchboard.ChannelEmail, Text: "hi", Attachments: big}, now); d.Allowed || !strings.Contains(d.Reason, "26.0 MB") {
		t.Errorf("26 MB of attachments: %+v", d)
	}
	if d := s.Check(r, switchboard.Draft{Channel: switchboard.ChannelEmail, Text: "  "}, now); d.Allowed {
		t.Errorf("empty text allowed")
	}
	if d := s.Check(switchboard.Recipient{}, switchboard.Draft{Channel: switchboard.ChannelWebform, Text: "hi"}, now); d.Allowed || d.Reason != "the customer has no e-mail address" {
		t.Errorf("no address: %+v", d)
	}
}
