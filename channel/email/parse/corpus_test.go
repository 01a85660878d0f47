package parse

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// att is an expected attachment: name, sniffed type and decoded size.
type att struct {
	Name, Type string
	Size       int
	Inline     bool
}

type corpusCase struct {
	file         string
	subject      string
	from         Address
	reply        string // exact Reply, unless replyContains is set
	replyContain []string
	replyLacks   []string
	text         string // substring of Text, when set
	atts         []att
	dropped      []string
	auto         string
	bounce       *Bounce
	htmlHas      []string // substrings of HTML
	htmlLacks    []string
	malformed    string // Email.Malformed: "" for every well-formed file
	check        func(t *testing.T, e *Email)
}

var corpus = []corpusCase{
	{
		file:    "01-gmail-reply.eml",
		subject: "Re: Your order #1042 has shipped",
		from:    Address{"Maria Garcia", "maria.garcia@gmail.com"},
		reply:   "Hi,\n\nThe tracking link says the parcel is stuck in Madrid since Friday. Can you check with the carrier?\n\nThanks,\nMaría",
		text:    "> Your order #1042 has shipped.",
		htmlHas: []string{`<a href="mailto:support@switchboard.example" rel="nofollow noopener" target="_blank">`, "stuck in Madrid",
			`<br/><div data-sb-fold="quote"><div><div dir="ltr">On Fri, Jan 5, 2024`},
		check: func(t *testing.T, e *Email) {
			if e.MessageID != "CAJx9k2Tq0=Hh5sF_xq+9Yk@mail.gmail.com" {
				t.Errorf("MessageID = %q", e.MessageID)
			}
			if !slices.Equal(e.InReplyTo, []string{"m.1042.a8f3@mail.switchboard.example"}) || !slices.Equal(e.References, []string{"m.1042.a8f3@mail.switchboard.example"}) {
				t.Errorf("InReplyTo %q References %q", e.InReplyTo, e.References)
			}
			if !reflect.DeepEqual(e.To, []Address{{"Switchboard Support", "support+abc123@switchboard.example"}}) {
				t.Errorf("To = %+v", e.To)
			}
			if !slices.Equal(e.DeliveredTo, []string{"support@switchboard.example"}) {
				t.Errorf("DeliveredTo = %q", e.DeliveredTo)
			}
			if want := time.Date(2024, 1, 8, 18, 15, 30, 0, time.UTC); !e.Date.Equal(want) || e.Date.Location() != time.UTC {
				t.Errorf("Date = %v, want %v", e.Date, want)
			}
		},
	},
	{
		file:      "02-outlook-reply-cp1252.eml",
		subject:   "RE: Invoice 2023-118 question",
		from:      Address{"O'Brien, Sean", "sean.obrien@contoso.com"},
		reply:     "That’s great, thank you – we’ll pay the €120 today.\n\nSean",
		text:      "Hi Sean, the corrected invoice is attached.",
		htmlHas:   []string{"That’s great, thank you – we’ll pay the €120 today.", `<div data-sb-fold="quote"><hr style="display: inline-block; width: 98%"/><div dir="ltr"><font`},
		htmlLacks: []string{"<style", "margin-top:0"},
	},
	{
		file:    "03-apple-mail-flowed.eml",
		subject: "Re: Password reset not arriving",
		from:    Address{"Johnny Appleseed", "j.appleseed@icloud.com"},
		// format=flowed; delsp=yes joins "this " + "morning".
		reply: "Still nothing in my inbox or spam folder, I tried three times this morning. Could you reset it manually?",
		text:  "Sent from my iPhone\n\n> On 10 Jan 2024, at 11:02, Switchboard Support <support@switchboard.example> wrote:",
	},
	{
		file:    "04-thunderbird-inline.eml",
		subject: "Re: A few questions about your API",
		from:    Address{"Klaus Weber", "klaus@example.de"},
		// An inline reply keeps the interleaved quotes; the trailing
		// unanswered quote and the signature go.
		reply: "On 10.01.24 18:00, Switchboard Support wrote:\n> Does your integration use webhooks or polling?\n\nWebhooks, with retries on our side.\n\n> Which region is your account in?\n\nEU (Frankfurt).",
		text:  "-- \nKlaus Weber\nMüller & Weber GmbH",
	},
	{
		file:      "05-yahoo-reply.eml",
		subject:   "Re: Subscription renewal",
		from:      Address{"Lina Wong", "lina_w@yahoo.com"},
		reply:     "Please cancel the renewal, I no longer need the plan.\nLina",
		htmlHas:   []string{`<div data-sb-fold="quote"><div><div style=`, "Your subscription renews on 15 January."}, // HTML keeps the history, folded
		htmlLacks: []string{"yahoo_quoted", "class="},
	},
	{
		file:    "06-latin1-french.eml",
		subject: "Re\u00a0: Problème de facturation",
		from:    Address{"Amélie Poulain", "amelie@exemple.fr"},
		reply:   "Bonjour,\n\nMerci, le problème est résolu. À bientôt !",
		text:    "Le 12/01/2024 à 17:30, Switchboard Support a écrit :\n> Pouvez-vous réessayer ?",
	},
	{
		file:    "07-shift-jis.eml",
		subject: "注文の配送状況について",
		from:    Address{"山田 太郎", "taro.yamada@example.co.jp"},
		reply:   "お世話になっております。\n注文番号1042の配送状況を教えてください。\n\n山田太郎",
	},
	{
		file:    "08-rfc2047-names.eml",
		subject: "AW: Lieferung verspätet – Bestellung 1042",
		from:    Address{"Jörg Müller", "joerg@example.de"},
		reply:   "Hallo,\n\ndas Paket ist heute angekommen. Vielen Dank!\n\nJörg",
		check: func(t *testing.T, e *Email) {
			want := []Address{{"Björn Ångström", "bjorn@example.se"}, {"", "plain@example.org"}}
			if !reflect.DeepEqual(e.Cc, want) {
				t.Errorf("Cc = %+v, want %+v", e.Cc, want)
			}
			if !reflect.DeepEqual(e.To, []Address{{"Switchboard Kundendienst", "support@switchboard.example"}}) {
				t.Errorf("To = %+v", e.To)
			}
			if !slices.Equal(e.References, []string{"m.8000.a1a1@mail.switchboard.example", "m.8008.u7i8@mail.switchboard.example"}) {
				t.Errorf("References = %q", e.References)
			}
		},
	},
	{
		file:    "09-nested-related-cid.eml",
		subject: "Screenshot of the error",
		from:    Address{"Priya Sharma", "priya@example.in"},
		reply:   "The export button shows this error:\n\n[image: error.png]\n\nAnd the log file is attached.",
		atts: []att{
			{"error.png", "image/png", 73, true},
			{"report.pdf", "application/pdf", 142, false},
		},
		htmlHas:   []string{`<img src="cid:ii_lr1abc2d0" alt="error.png" width="2" height="2">`},
		htmlLacks: []string{"tracker.example.com", "open.gif"},
		check: func(t *testing.T, e *Email) {
			if e.Attachments[0].ContentID != "ii_lr1abc2d0" || e.Attachments[1].ContentID != "f_lr1abc3e1" {
				t.Errorf("content ids %q %q", e.Attachments[0].ContentID, e.Attachments[1].ContentID)
			}
		},
	},
	{
		file:    "10-rfc2231-filename.eml",
		subject: "Fattura allegata",
		from:    Address{"Sofia Rossi", "sofia@example.it"},
		reply:   "Ecco la fattura.",
		atts: []att{
			{"Fattura n° 42 – gennaio 2024.pdf", "application/pdf", 142, false},
			{"été résumé.txt", "text/plain", len("résumé de l'été"), false},
			// path and the right-to-left override are removed
			{"evilgpj.exe", "text/plain", len("MZ binary"), false},
		},
	},
	{
		file:    "11-qp-soft-breaks.eml",
		subject: "Long line test",
		from:    Address{"Dev Team", "dev@example.com"},
		reply: "This is a very long line that the sender's mailer has wrapped with soft line breaks so that no encoded line is longer than seventy-six characters, as RFC 2045 requires; the equation a=b+c must survive, and so must café.\n" +
			"Trailing spaces are padding:  \nPrice: 100 = 50 + 50 (literal = sign); a bare = sign stays.",
	},
	{
		file:    "12-missing-closing-boundary.eml",
		subject: "Logs",
		from:    Address{"Tom Baker", "tom@example.net"},
		reply:   "Here are the logs you asked for.",
		atts:    []att{{"graph.png", "image/png", 73, false}},
	},
	{
		file:    "13-bad-base64.eml",
		subject: "Broken encoding",
		from:    Address{"Anna Kowalska", "anna@example.pl"},
		reply:   "Dzień dobry, proszę o pomoc.",
		dropped: []string{"scan.pdf"},
	},
	{
		file:    "14-no-content-type.eml",
		subject: "plain old mail",
		from:    Address{"Old Timer", "old@legacy.example"},
		reply:   "Hello, is this thing on?",
		text:    "-- \nOld Timer",
	},
	{
		file:    "15-unknown-charset.eml",
		subject: "Question sur ma commande",
		from:    Address{"Marc Dupont", "marc@example.be"},
		reply:   "Ma commande n'est pas arrivée, pouvez-vous vérifier ? Coût : 12€.",
	},
	{
		file:    "16-html-only-xss.eml",
		subject: "Please look at my account",
		from:    Address{"Not A Hacker", "attacker@evil.example"},
		reply:   "Hello, my account #7781 is locked & I can't log in.\n\nclick me FAQ data link\nstyled",
		htmlHas: []string{
			"<p>Hello, my account <b>#7781</b> is locked &amp; I can&#39;t log in.</p>",
			`<a href="https://help.example.com/faq" rel="nofollow noopener" target="_blank">FAQ</a>`,
			`<div>styled</div>`,
		},
		htmlLacks: []string{"<img", "evil.example", "<svg", "<form", "<input", "<iframe", "expression", "data:", "onload", "alert"},
	},
	{
		file:    "17-auto-submitted.eml",
		subject: "[Ticket #55123] We received your request",
		from:    Address{"Helpdesk", "helpdesk@vendor.example"},
		reply:   "Thank you for contacting us. A member of our team will reply within 24 hours.",
		auto:    "Auto-Submitted: auto-replied",
	},
	{
		file:    "18-out-of-office.eml",
		subject: "Abwesenheitsnotiz: Re: Your quote",
		from:    Address{"Hans Mueller", "h.mueller@example.ch"},
		reply:   "Ich bin bis zum 5. Februar nicht im Büro.",
		auto:    "X-Autoreply",
	},
	{
		file:    "19-mailing-list.eml",
		subject: "[go-nuts] Generics question",
		from:    Address{"Some Gopher", "gopher@example.com"},
		reply:   "How do I constrain a type parameter to slices?",
		auto:    "List-Id",
		check: func(t *testing.T, e *Email) {
			if want := []string{"support@switchboard.example", "support+list@switchboard.example"}; !slices.Equal(e.DeliveredTo, want) {
				t.Errorf("DeliveredTo = %q, want %q", e.DeliveredTo, want)
			}
		},
	},
	{
		file:    "20-precedence-bulk.eml",
		subject: "Our January newsletter",
		from:    Address{"Example News", "news@example.com"},
		reply:   "Ten things you missed this month.",
		auto:    "Precedence: bulk",
	},
	{
		file:         "21-postfix-dsn.eml",
		subject:      "Undelivered Mail Returned to Sender",
		from:         Address{"Mail Delivery System", "mailer-daemon@mx.switchboard.example"},
		replyContain: []string{"This is the mail system at host mx.switchboard.example.", "User unknown in virtual"},
		replyLacks:   []string{"Reporting-MTA", "Message-ID"},
		auto:         "Auto-Submitted: auto-replied",
		bounce: &Bounce{
			Recipients: []BounceRecipient{{
				FinalRecipient: "nobody@example.org", Action: "failed", Status: "5.1.1",
				Diagnostic: "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
			}},
			OriginalMessageID: "m.9001.abcd@mail.switchboard.example",
		},
	},
	{
		file:         "22-gmail-bounce.eml",
		subject:      "Delivery Status Notification (Failure)",
		from:         Address{"Mail Delivery Subsystem", "mailer-daemon@googlemail.com"},
		replyContain: []string{"** Address not found **", "550 5.1.1 The email account that you tried to reach does not exist."},
		auto:         "Auto-Submitted: auto-replied",
		atts:         []att{{"message.eml", "message/rfc822", 309, false}},
		bounce: &Bounce{
			Recipients: []BounceRecipient{{
				FinalRecipient: "gone.user@gmail.com", Action: "failed", Status: "5.1.1",
				Diagnostic: "550-5.1.1 The email account that you tried to reach does not exist.",
			}},
			OriginalMessageID: "m.9100.efgh@mail.switchboard.example",
		},
	},
	{
		file:         "23-delayed-dsn.eml",
		subject:      "Delayed Mail (still being retried)",
		from:         Address{"Mail Delivery System", "mailer-daemon@relay.example.net"},
		replyContain: []string{"could not be delivered for more than 4 hour(s)"},
		auto:         "Auto-Submitted: auto-generated",
		bounce: &Bounce{
			Recipients: []BounceRecipient{
				{FinalRecipient: "slow@example.com", Action: "delayed", Status: "4.4.7",
					Diagnostic: "delivery temporarily suspended: connect to mx.example.com[198.51.100.7]:25: Connection timed out"},
				{FinalRecipient: "also-slow@example.com", Action: "delayed", Status: "4.4.1"},
			},
			OriginalMessageID: "m.9200.ijkl@mail.switchboard.example",
		},
	},
	{
		file:    "24-calendar-invite.eml",
		subject: "Onboarding call",
		from:    Address{"O'Brien, Sean", "sean.obrien@contoso.com"},
		reply:   "Let's walk through the setup together.",
		atts:    []att{{"invite.ics", "text/calendar", 418, false}},
		htmlHas: []string{"<p>Let&#39;s walk through the setup together.</p>"},
		check: func(t *testing.T, e *Email) {
			if !strings.HasPrefix(string(e.Attachments[0].Data), "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n") {
				t.Errorf("invite data %q", e.Attachments[0].Data[:40])
			}
		},
	},
	{
		file:    "25-attachment-only.eml",
		subject: "Scanned document",
		from:    Address{"Office Scanner", "scanner@office.example"},
		reply:   "",
		atts:    []att{{"scan_0001.pdf", "application/pdf", 142, false}},
	},
	{
		file:         "26-exim-bounce.eml",
		subject:      "Mail delivery failed: returning message to sender",
		from:         Address{"Mail Delivery System", "mailer-daemon@mail.hosting.example"},
		replyContain: []string{"This is a permanent error."},
		auto:         "Return-Path: <>",
		atts:         []att{{"message.eml", "message/rfc822", 203, false}},
		bounce: &Bounce{
			Recipients:        []BounceRecipient{{FinalRecipient: "old.customer@hosting.example", Action: "failed", Status: "5.2.2"}},
			OriginalMessageID: "m.9300.mnop@mail.switchboard.example",
		},
	},
	{
		file:    "27-outlook-original-message.eml",
		subject: "RE: Upgrade options",
		from:    Address{"Kenji Tanaka", "k.tanaka@example.org"},
		reply:   "We'd like the Business plan for 12 seats.\n\nKenji",
		text:    "-----Original Message-----",
	},
	{
		file:    "28-gmail-html-only-reply.eml",
		subject: "Re: Delivery address",
		from:    Address{"Olu Adeyemi", "olu@gmail.com"},
		reply:   "Please ship to:\n12 Marina Road\nLagos",
		text:    "> Where should we ship it?",
		htmlHas: []string{"<blockquote>Where should we ship it?</blockquote>", `<div><br/></div><div data-sb-fold="signature">-- <br/><div dir="ltr">Olu Adeyemi`},
	},
	{
		file:    "29-iso2022jp-body.eml",
		subject: "返品したい",
		from:    Address{"花子", "hanako@example.jp"},
		reply:   "お問い合わせありがとうございます。\n返品の手続きをお願いします。",
	},
	{
		file:    "30-forwarded-rfc822.eml",
		subject: "Fwd: Wrong charge",
		from:    Address{"Lee Min-ho", "lee@example.kr"},
		reply:   "See the message from my bank below.",
		atts:    []att{{"message.eml", "message/rfc822", 188, false}},
	},
	{
		file:    "31-exchange-oof.eml",
		subject: "Automatisch antwoord: Your ticket",
		from:    Address{"Marieke Jansen", "m.jansen@example.nl"},
		reply:   "Ik ben afwezig tot 12 februari. Voor dringende zaken: bel 020-1234567.",
		auto:    "Auto-Submitted: auto-generated",
	},
	{
		file:    "32-signature-mobile.eml",
		subject: "Re: Refund status",
		from:    Address{"Chris P.", "chris@example.com"},
		reply:   "Any news on the refund?",
	},
	{
		file:    "33-apple-inline-attachment.eml",
		subject: "Receipt",
		from:    Address{"Noor Al-Hassan", "noor@example.ae"},
		reply:   "Here is the receipt:\n\nThanks!",
		atts:    []att{{"notes.txt", "text/plain", len("order 1042, paid by card\r\n"), true}},
	},
	// Malformed mail: recovered and marked, never refused.
	{
		file:      "34-malformed-whitespace-first-line.eml",
		subject:   "Não consigo entrar",
		from:      Address{"Paulo Santos", "paulo.santos@customer.test"},
		reply:     "Olá, I can't log in since this morning: the page says \"invalid session\".\nCan you help?\n\nPaulo",
		malformed: "whitespace before the first header",
		check: func(t *testing.T, e *Email) {
			if e.MessageID != "20240116091240.GA1234@customer.test" || !e.Date.Equal(time.Date(2024, 1, 16, 9, 12, 40, 0, time.UTC)) {
				t.Errorf("MessageID %q Date %v", e.MessageID, e.Date)
			}
		},
	},
	{
		file:      "35-malformed-header-without-colon.eml",
		subject:   "Refund for order 2291",
		from:      Address{"Kenta Ito", "k.ito@customer.test"},
		reply:     "Hello, I returned the item last week. When will the refund arrive?\n\nKenta",
		malformed: "header line without a colon",
		check: func(t *testing.T, e *Email) {
			if e.MessageID != "nocolon.2291@customer.test" || e.ReturnPath != "k.ito@customer.test" {
				t.Errorf("MessageID %q ReturnPath %q", e.MessageID, e.ReturnPath)
			}
		},
	},
	{
		file:    "36-bare-lf-multipart.eml",
		subject: "Re: Delivery slot",
		from:    Address{"Ines Moreau", "ines@customer.test"},
		reply:   "Thursday morning works, the concierge will sign for it.\n\nInes",
		htmlHas: []string{"<p>Thursday morning works, the concierge will sign for it.</p>"},
		check: func(t *testing.T, e *Email) {
			if !slices.Equal(e.InReplyTo, []string{"m.77.slot@mail.switchboard.example"}) {
				t.Errorf("InReplyTo %q", e.InReplyTo)
			}
		},
	},
	{
		file:      "37-malformed-nul-bytes.eml",
		subject:   "Invoice copy",
		from:      Address{"Dana White", "dana@customer.test"},
		reply:     "Could you send me a copy of invoice 5512?",
		malformed: "control characters in the header; control characters in the text",
	},
	{
		file:      "38-malformed-8bit-headers.eml",
		subject:   "Rückerstattung für Bestellung 3310",
		from:      Address{"Jürgen Weiß", "juergen@customer.test"},
		reply:     "Guten Tag, wann kommt meine Rückerstattung?\n\nJürgen",
		malformed: "invalid header field name",
		check: func(t *testing.T, e *Email) {
			if !reflect.DeepEqual(e.To, []Address{{"Équipe Support", "support@switchboard.example"}}) {
				t.Errorf("To = %+v", e.To)
			}
		},
	},
	{
		file:         "39-random-body.eml",
		subject:      "receipt",
		from:         Address{"Rui Costa", "rui@customer.test"},
		replyContain: []string{},
		malformed:    "control characters in the text",
		check: func(t *testing.T, e *Email) {
			if !bytes.Equal(readCorpus(t, "39-random-body.eml"), randomBodyMail()) {
				t.Error("the file is not randomBodyMail()")
			}
			if len(e.Text) < 2048 || e.Reply == "" || strings.ContainsFunc(e.Text, isTextControl) {
				t.Errorf("Text of %d bytes, Reply of %d bytes, or control characters left", len(e.Text), len(e.Reply))
			}
		},
	},
	{
		file:    "40-headers-only.eml",
		subject: "Please call me back on +46 8 123 456",
		from:    Address{"Lars Berg", "lars@customer.test"},
		reply:   "",
		check: func(t *testing.T, e *Email) {
			if e.Text != "" || e.MessageID != "hdr.only.1@customer.test" {
				t.Errorf("Text %q MessageID %q", e.Text, e.MessageID)
			}
		},
	},
}

// randomBodyMail is 39-random-body.eml: a header, then 4 KB from a
// seeded PRNG as the body.
func randomBodyMail() []byte {
	body := make([]byte, 4096)
	rand.NewChaCha8([32]byte{'s', 'w', 'i', 't', 'c', 'h', 'b', 'o', 'a', 'r', 'd'}).Read(body)
	return append([]byte("From: Rui Costa <rui@customer.test>\r\nTo: support@switchboard.example\r\nSubject: receipt\r\n"+
		"Date: Thu, 18 Jan 2024 12:00:00 +0000\r\nMessage-ID: <random.4096@customer.test>\r\n\r\n"), body...)
}

func readCorpus(tb testing.TB, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/corpus/*.eml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 || len(files) != len(corpus) {
		t.Fatalf("%d corpus files, %d cases: every file needs a case", len(files), len(corpus))
	}
	for _, c := range corpus {
		t.Run(c.file, func(t *testing.T) {
			e, err := Parse(readCorpus(t, c.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if e.Subject != c.subject {
				t.Errorf("Subject = %q, want %q", e.Subject, c.subject)
			}
			if e.From != c.from {
				t.Errorf("From = %+v, want %+v", e.From, c.from)
			}
			if c.replyContain == nil {
				if e.Reply != c.reply {
					t.Errorf("Reply =\n%q\nwant\n%q", e.Reply, c.reply)
				}
			} else {
				for _, s := range c.replyContain {
					if !strings.Contains(e.Reply, s) {
						t.Errorf("Reply lacks %q:\n%s", s, e.Reply)
					}
				}
			}
			for _, s := range c.replyLacks {
				if strings.Contains(e.Reply, s) {
					t.Errorf("Reply contains %q", s)
				}
			}
			if c.text != "" && !strings.Contains(e.Text, c.text) {
				t.Errorf("Text lacks %q:\n%s", c.text, e.Text)
			}
			var got []att
			for _, a := range e.Attachments {
				got = append(got, att{a.Name, a.ContentType, len(a.Data), a.Inline})
			}
			if !reflect.DeepEqual(got, c.atts) {
				t.Errorf("attachments = %+v, want %+v", got, c.atts)
			}
			if !slices.Equal(e.Dropped, c.dropped) {
				t.Errorf("Dropped = %q, want %q", e.Dropped, c.dropped)
			}
			if e.Auto != c.auto {
				t.Errorf("Auto = %q, want %q", e.Auto, c.auto)
			}
			if !reflect.DeepEqual(e.Bounce, c.bounce) {
				t.Errorf("Bounce = %+v, want %+v", e.Bounce, c.bounce)
			}
			for _, s := range c.htmlHas {
				if !strings.Contains(e.HTML, s) {
					t.Errorf("HTML lacks %q:\n%s", s, e.HTML)
				}
			}
			for _, s := range c.htmlLacks {
				if strings.Contains(e.HTML, s) {
					t.Errorf("HTML contains %q:\n%s", s, e.HTML)
				}
			}
			if e.Malformed != c.malformed {
				t.Errorf("Malformed = %q, want %q", e.Malformed, c.malformed)
			}
			if c.check != nil {
				c.check(t, e)
			}
		})
	}
}

// TestCorpusInvariants holds for every corpus file: valid UTF-8
// everywhere, nothing executable in the HTML, no remote images, Reply
// never longer than Text and present whenever Text has new text.
func TestCorpusInvariants(t *testing.T) {
	files, _ := filepath.Glob("testdata/corpus/*.eml")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		checkEmail(t, f, e)
	}
}

// checkEmail asserts the invariants every parsed message keeps.
func checkEmail(t *testing.T, name string, e *Email) {
	t.Helper()
	for field, s := range emailStrings(e) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("%s: %s = %q is not valid UTF-8 without NUL", name, field, s)
		}
	}
	if bad := unsafeHTML(e.HTML); bad != "" {
		t.Fatalf("%s: HTML contains %q:\n%s", name, bad, e.HTML)
	}
	if len(e.Reply) > len(e.Text) {
		t.Fatalf("%s: Reply longer than Text", name)
	}
	if e.Reply == "" && strings.TrimSpace(e.Text) != "" && !whollyQuoted(e.Text) {
		t.Fatalf("%s: empty Reply for text %q", name, e.Text)
	}
	for _, a := range e.Attachments {
		if a.Name == "" || len(a.Name) > 255 || strings.ContainsAny(a.Name, "/\\\x00") {
			t.Fatalf("%s: attachment name %q", name, a.Name)
		}
		if a.ContentType == "" || strings.Contains(a.ContentType, ";") {
			t.Fatalf("%s: content type %q", name, a.ContentType)
		}
		if len(a.Data) > MaxAttachment {
			t.Fatalf("%s: attachment of %d bytes", name, len(a.Data))
		}
	}
}

// TestCorpusFolds: the HTML of every corpus mail has a fold exactly when
// the text stripper took something from its text, and outside its folds
// says what Reply says (white space aside), unless the two parts differ.
func TestCorpusFolds(t *testing.T) {
	differ := map[string]string{
		"09-nested-related-cid.eml": "the text part names the image [image: error.png]",
		"22-gmail-bounce.eml":       "the text part tells more than the HTML",
	}
	files, _ := filepath.Glob("testdata/corpus/*.eml")
	for _, f := range files {
		name := filepath.Base(f)
		e, err := Parse(readCorpus(t, name))
		if err != nil || e.HTML == "" {
			continue
		}
		text, quote, sig := foldParts(e.HTML)
		if folded, stripped := len(quote)+len(sig) > 0, e.Reply != e.Text; folded != stripped {
			t.Errorf("%s: %d quote and %d signature folds, yet Reply != Text is %v", name, len(quote), len(sig), stripped)
		}
		same := strings.Join(strings.Fields(text), " ") == strings.Join(strings.Fields(e.Reply), " ")
		if why, ok := differ[name]; ok == same {
			t.Errorf("%s: HTML new text %q, Reply %q (parts differ: %q)", name, text, e.Reply, why)
		}
	}
}

// unsafeHTML returns the first dangerous construct found in sanitised
// HTML, or "".
func unsafeHTML(h string) string {
	l := strings.ToLower(h)
	for _, bad := range []string{"<script", "javascript:", "vbscript:", "<iframe", "<object", "<embed", "<form", "<style", "<svg", "<math", "<meta", "<link", "<base", "expression(", "data:", `src="http`, `src="//`, "url(", "srcset"} {
		if strings.Contains(l, bad) {
			return bad
		}
	}
	// Event handler attributes: " on...=" inside a tag.
	if onAttrRE.MatchString(l) {
		return onAttrRE.FindString(l)
	}
	return ""
}
