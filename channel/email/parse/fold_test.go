package parse

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// foldCases are replies shaped like what the common clients send. text
// is what lies outside the folds (the new text); quote and sig are how
// the text of the quote and signature folds begin, "" when there is no
// such fold.
var foldCases = []struct {
	name, in         string
	text, quote, sig string
	want             string // the exact output, when set
}{
	{
		name: "gmail",
		in: `<div dir="ltr">Hi,<div><br></div><div>Tuesday works for us.</div><div><br></div><div>Best,</div><div>Ann</div></div><br>` +
			`<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">On Mon, Jan 8, 2024 at 10:15 AM Support &lt;<a href="mailto:support@switchboard.example">support@switchboard.example</a>&gt; wrote:<br></div>` +
			`<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><div dir="ltr">Does Tuesday work?</div></blockquote></div>`,
		text:  "Hi,\n\nTuesday works for us.\n\nBest,\nAnn",
		quote: "On Mon, Jan 8, 2024 at 10:15 AM Support <support@switchboard.example> wrote:\n\n> Does Tuesday work?",
		want: `<div dir="ltr">Hi,<div><br/></div><div>Tuesday works for us.</div><div><br/></div><div>Best,</div><div>Ann</div></div><br/>` +
			`<div data-sb-fold="quote"><div><div dir="ltr">On Mon, Jan 8, 2024 at 10:15 AM Support &lt;<a href="mailto:support@switchboard.example" rel="nofollow noopener" target="_blank">support@switchboard.example</a>&gt; wrote:<br/></div>` +
			`<blockquote style="margin: 0px 0px 0px 0.8ex; border-left: 1px solid rgb(204,204,204); padding-left: 1ex"><div dir="ltr">Does Tuesday work?</div></blockquote></div></div>`,
	},
	{
		name: "gmail signature and quote",
		in: `<div dir="ltr">Please ship to the new address.<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br>` +
			`<div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature"><div dir="ltr">Olu Adeyemi<br>Adeyemi Foods</div></div></div><br>` +
			`<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Sat, Feb 3, 2024 at 9:00 AM Support &lt;support@switchboard.example&gt; wrote:<br></div>` +
			`<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">Where should we ship it?</blockquote></div>`,
		text:  "Please ship to the new address.",
		quote: "On Sat, Feb 3, 2024 at 9:00 AM Support <support@switchboard.example> wrote:",
		sig:   "--\nOlu Adeyemi\nAdeyemi Foods",
	},
	{
		name:  "gmail forward is history",
		in:    `<div dir="ltr">See below.<br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">---------- Forwarded message ---------<br>From: <b class="gmail_sendername">Bank</b></div><br><br>Your card was charged twice.</div></div>`,
		text:  "See below.",
		quote: "---------- Forwarded message ---------\nFrom: Bank",
	},
	{
		name: "outlook web",
		in: `<html><head><style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style></head><body dir="ltr">
<div class="elementToProof" style="font-family: Aptos, Aptos_EmbeddedFont, Calibri, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);">
Paid today, thanks.</div>
<div id="appendonsend"></div>
<hr style="display:inline-block;width:98%" tabindex="-1">
<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000"><b>From:</b> Support &lt;support@switchboard.example&gt;<br>
<b>Sent:</b> Monday, January 8, 2024 5:44 PM<br>
<b>To:</b> Sean &lt;sean@contoso.com&gt;<br>
<b>Subject:</b> Invoice</font>
<div>&nbsp;</div>
</div>
<div class="BodyFragment"><font size="2"><span style="font-size:11pt;">
<div class="PlainText">Please pay invoice 118.</div>
</span></font></div>
</body></html>`,
		text:  "Paid today, thanks.",
		quote: "---\nFrom: Support <support@switchboard.example>\nSent: Monday, January 8, 2024 5:44 PM",
	},
	{
		name: "outlook web without appendonsend",
		in: `<div>Paid today, thanks.</div>
<hr style="display:inline-block;width:98%">
<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Support<br><b>Sent:</b> Monday</div>
<div>Please pay invoice 118.</div>`,
		text:  "Paid today, thanks.",
		quote: "---\nFrom: Support\nSent: Monday",
	},
	{
		name: "outlook desktop",
		in: `<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta name=Generator content="Microsoft Word 15 (filtered medium)"><style>p.MsoNormal{margin:0cm;}</style></head>` +
			`<body lang=EN-GB link="#0563C1" vlink="#954F72"><div class=WordSection1><p class=MsoNormal>Hi,<o:p></o:p></p><p class=MsoNormal>We&#8217;d like the Business plan.<o:p></o:p></p>` +
			`<p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Kenji<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>` +
			`<div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p class=MsoNormal><b><span lang=EN-US>From:</span></b><span lang=EN-US> Support &lt;support@switchboard.example&gt; <br><b>Sent:</b> Monday, January 8, 2024 5:44 PM<br><b>Subject:</b> Upgrade options<o:p></o:p></span></p></div></div>` +
			`<p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Which plan would you like?<o:p></o:p></p></div></body></html>`,
		text:  "Hi,\n\nWe’d like the Business plan.\n\nKenji",
		quote: "From: Support <support@switchboard.example>\nSent: Monday, January 8, 2024 5:44 PM",
	},
	{
		// The history starts inside a block that more content follows:
		// the block is split in two, the second half a copy.
		name:  "outlook desktop nested",
		in:    `<div class="WordSection1" style="color:#1F497D"><p>Paid</p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p><b>From:</b> S<br><b>Sent:</b> Monday</p></div></div><p>old</p></div><p>after</p>`,
		text:  "Paid",
		quote: "From: S\nSent: Monday\n\nold\n\nafter",
		want:  `<div style="color: #1F497D"><p>Paid</p></div><div data-sb-fold="quote"><div style="color: #1F497D"><div><div style="border: none; border-top: solid #E1E1E1 1.0pt; padding: 3.0pt 0in 0in 0in"><p><b>From:</b> S<br/><b>Sent:</b> Monday</p></div></div><p>old</p></div><p>after</p></div>`,
	},
	{
		name: "outlook original message",
		in:   `<div>Fine by me.</div><div><br></div><div>-----Original Message-----<br>From: Ann<br>Sent: Monday<br>Subject: x</div><div>old</div>`,
		text: "Fine by me.", quote: "-----Original Message-----\nFrom: Ann",
	},
	{
		name: "apple mail ios",
		in: `<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body dir="auto">Still nothing in my inbox.<br><br>` +
			`<div dir="ltr">Sent from my iPhone</div><div dir="ltr"><br><blockquote type="cite">On 10 Jan 2024, at 11:02, Support &lt;support@switchboard.example&gt; wrote:<br><br></blockquote></div>` +
			`<blockquote type="cite"><div dir="ltr">Please use the reset link.</div></blockquote></body></html>`,
		text:  "Still nothing in my inbox.",
		quote: "> On 10 Jan 2024, at 11:02, Support <support@switchboard.example> wrote:\n>\n> Please use the reset link.",
		sig:   "Sent from my iPhone",
		want: `Still nothing in my inbox.<br/><br/><div data-sb-fold="signature"><div dir="ltr">Sent from my iPhone</div></div>` +
			`<div data-sb-fold="quote"><div dir="ltr"><br/><blockquote>On 10 Jan 2024, at 11:02, Support &lt;support@switchboard.example&gt; wrote:<br/><br/></blockquote></div>` +
			`<blockquote><div dir="ltr">Please use the reset link.</div></blockquote></div>`,
	},
	{
		name: "apple mail macos",
		in: `<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">` +
			`Yes, that fixed it.<div><br></div><div>Johnny</div><div><br id="lineBreakAtBeginningOfMessage"><div><br><blockquote type="cite"><div>On 10 Jan 2024, at 11:02, Support &lt;support@switchboard.example&gt; wrote:</div>` +
			`<br class="Apple-interchange-newline"><div><div>Please try again.</div></div></blockquote></div><br></div></body></html>`,
		text:  "Yes, that fixed it.\n\nJohnny",
		quote: "> On 10 Jan 2024, at 11:02, Support <support@switchboard.example> wrote:",
	},
	{
		name: "thunderbird",
		in: `<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body><p>Webhooks, with retries on our side.</p>` +
			`<div class="moz-signature">-- <br>Klaus Weber<br>Müller &amp; Weber GmbH</div>` +
			`<div class="moz-cite-prefix">On 10.01.24 18:00, Switchboard Support wrote:<br></div><blockquote type="cite" cite="mid:m.1@mail.switchboard.example"><p>Does your integration use webhooks or polling?</p></blockquote><br></body></html>`,
		text:  "Webhooks, with retries on our side.",
		quote: "On 10.01.24 18:00, Switchboard Support wrote:\n\n> Does your integration use webhooks or polling?",
		sig:   "--\nKlaus Weber\nMüller & Weber GmbH",
	},
	{
		// Bottom-posting: the cited history comes first, so new text
		// follows a fold; StripReplyHTML drops it all the same.
		name: "thunderbird bottom-posted",
		in: `<div class="moz-cite-prefix">On 10.01.24 18:00, Support wrote:<br></div><blockquote type="cite">Which region?</blockquote>` +
			`<p>EU (Frankfurt).</p><pre class="moz-signature" cols="72">-- 
Klaus Weber</pre>`,
		text:  "EU (Frankfurt).",
		quote: "On 10.01.24 18:00, Support wrote:\n\n> Which region?",
		sig:   "-- \nKlaus Weber",
	},
	{
		name: "yahoo",
		in: `<html><head></head><body><div class="ydp3b2c1a0dyahoo-style-wrap" style="font-family:Helvetica Neue, Helvetica, Arial, sans-serif;font-size:13px;"><div dir="ltr" data-setdir="false">Please cancel the renewal.</div><div dir="ltr" data-setdir="false">Lina</div></div>` +
			`<div id="yahoo_quoted_1234567890" class="yahoo_quoted"><div style="font-family:'Helvetica Neue', Helvetica, Arial, sans-serif;font-size:13px;color:#26282a;"><div>On Thursday, January 11, 2024 at 06:12:44 PM GMT+1, Support &lt;support@switchboard.example&gt; wrote:</div><div><br></div><div>Your subscription renews on 15 January.</div></div></div></body></html>`,
		text:  "Please cancel the renewal.\nLina",
		quote: "On Thursday, January 11, 2024 at 06:12:44 PM GMT+1, Support <support@switchboard.example> wrote:",
	},
	{
		// No class or id to go by: the text rules find the attribution.
		name:  "attribution and blockquote without markup",
		in:    `<div>Sounds good.</div><div><br></div><div>On Mon, Jan 8, 2024, at 10:15, Ann &lt;ann@example.com&gt; wrote:</div><blockquote style="margin:0 0 0 .8ex"><div>Shall we meet?</div></blockquote>`,
		text:  "Sounds good.",
		quote: "On Mon, Jan 8, 2024, at 10:15, Ann <ann@example.com> wrote:\n\n> Shall we meet?",
	},
	{
		// A <div> cannot go inside a <p>: the paragraph is split.
		name:  "attribution inside a paragraph",
		in:    `<p>Thanks!<br><br>On Mon, Jan 8, 2024, Ann wrote:</p><blockquote>Shall we?</blockquote>`,
		text:  "Thanks!",
		quote: "On Mon, Jan 8, 2024, Ann wrote:\n\n> Shall we?",
		want:  `<p>Thanks!<br/><br/></p><div data-sb-fold="quote"><p>On Mon, Jan 8, 2024, Ann wrote:</p><blockquote>Shall we?</blockquote></div>`,
	},
	{
		name: "plain text in pre",
		in:   "<pre>Thanks, that works.\n-- \nJane Doe\n\nOn Mon, Jan 8, 2024 Ann wrote:\n&gt; old</pre>",
		text: "Thanks, that works.", sig: "-- \nJane Doe", quote: "On Mon, Jan 8, 2024 Ann wrote:\n> old",
		want: "<pre>Thanks, that works.\n<div data-sb-fold=\"signature\">-- \nJane Doe\n\n</div><div data-sb-fold=\"quote\">On Mon, Jan 8, 2024 Ann wrote:\n&gt; old</div></pre>",
	},
	{
		name: "signature lines",
		in:   `<div>Thanks!</div><div>-- </div><div>Jane Doe</div><div>ACME</div>`,
		text: "Thanks!", sig: "--\nJane Doe\nACME",
	},
	{
		name: "signature in a table cell",
		in:   `<table><tr><td>Thanks<br>-- <br>Jane</td></tr></table>`,
		text: "Thanks", sig: "--\nJane",
		want: `<table><tbody><tr><td>Thanks<br/><div data-sb-fold="signature">-- <br/>Jane</div></td></tr></tbody></table>`,
	},
	{
		name: "mobile signature",
		in:   `<div>Ok</div><div><br></div><div>Sent from my Galaxy</div>`,
		text: "Ok", sig: "Sent from my Galaxy",
	},
	{
		name:  "wholly quoted",
		in:    `<blockquote type="cite">On Mon, Ann wrote:<br>old</blockquote>`,
		quote: "> On Mon, Ann wrote:\n> old",
	},
	{
		name: "no quote",
		in:   `<p>Just <b>this</b></p>`,
		text: "Just this",
		want: `<p>Just <b>this</b></p>`,
	},
	{
		name: "on in a sentence is no attribution",
		in:   `<p>On Monday I tried again and it failed.</p><p>From: my phone</p><p>Please help.</p>`,
		text: "On Monday I tried again and it failed.\n\nFrom: my phone\n\nPlease help.",
	},
	{
		// An inline reply keeps its quotes, as StripReply keeps them.
		name: "inline reply",
		in:   `<div>On Mon, Ann wrote:</div><blockquote>q1</blockquote><div>a1</div><blockquote>q2</blockquote><div>a2</div><blockquote>q3</blockquote>`,
		text: "On Mon, Ann wrote:\n\n> q1\n\na1\n\n> q2\n\na2", quote: "> q3",
	},
}

// foldParts splits marked HTML into the text outside the folds and the
// texts of the quote and signature folds, in document order.
func foldParts(s string) (text string, quote, sig []string) {
	return foldPartsOf(parseBody(s))
}

// foldPartsOf is foldParts on a tree, which it changes.
func foldPartsOf(body *html.Node) (text string, quote, sig []string) {
	var folds []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n.Attr, foldAttr) != "" {
			folds = append(folds, n)
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(body)
	for _, f := range folds {
		// Read in place: a fold inside a <pre> or a quote is read so.
		t := &textWriter{}
		for p := f.Parent; p != nil; p = p.Parent {
			switch p.DataAtom {
			case atom.Pre:
				t.pre++
			case atom.Blockquote:
				t.depth++
			}
		}
		t.node(f)
		if attr(f.Attr, foldAttr) == "quote" {
			quote = append(quote, trimText(t.String()))
		} else {
			sig = append(sig, trimText(t.String()))
		}
		f.Parent.RemoveChild(f)
	}
	return trimText(HTMLToText(renderChildren(body))), quote, sig
}

// foldMarkupError returns what is wrong with the markers of marked HTML:
// a data-sb-fold that is not alone on a <div> with the value quote or
// signature, or a fold inside a fold; "" when nothing is.
func foldMarkupError(s string) string {
	var bad string
	var walk func(n *html.Node, in bool)
	walk = func(n *html.Node, in bool) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key != foldAttr {
					continue
				}
				switch {
				case n.DataAtom != atom.Div || len(n.Attr) != 1:
					bad = fmt.Sprintf("%s on <%s> with %d attributes", foldAttr, n.Data, len(n.Attr))
				case a.Val != "quote" && a.Val != "signature":
					bad = fmt.Sprintf("%s=%q", foldAttr, a.Val)
				case in:
					bad = "a fold inside a fold"
				}
				in = true
			}
		}
		for c := n.FirstChild; c != nil && bad == ""; c = c.NextSibling {
			walk(c, in)
		}
	}
	walk(parseBody(s), false)
	return bad
}

func TestFoldHTML(t *testing.T) {
	for _, tt := range foldCases {
		t.Run(tt.name, func(t *testing.T) {
			out := FoldHTML(tt.in)
			if tt.want != "" && out != tt.want {
				t.Errorf("FoldHTML =\n%s\nwant\n%s", out, tt.want)
			}
			if bad := foldMarkupError(out); bad != "" {
				t.Errorf("%s in\n%s", bad, out)
			}
			if bad := unsafeHTML(out); bad != "" {
				t.Errorf("output contains %q", bad)
			}
			if strings.Contains(out, "sb-fold-") {
				t.Errorf("a hint tag is left in\n%s", out)
			}
			text, quote, sig := foldParts(out)
			if text != tt.text {
				t.Errorf("new text =\n%q\nwant\n%q\nin\n%s", text, tt.text, out)
			}
			for _, c := range []struct {
				kind, want string
				got        []string
			}{{"quote", tt.quote, quote}, {"signature", tt.sig, sig}} {
				if c.want == "" && len(c.got) > 0 || c.want != "" && (len(c.got) != 1 || !strings.HasPrefix(c.got[0], c.want)) {
					t.Errorf("%s folds = %q, want one starting %q, in\n%s", c.kind, c.got, c.want, out)
				}
			}
			if strings.Contains(out, foldAttr) {
				// What the browser parses is what was marked.
				if again := renderChildren(parseBody(out)); again != out {
					t.Errorf("marked HTML does not parse back to itself:\n%s\n%s", out, again)
				}
			} else if out != SanitizeHTML(tt.in) {
				t.Errorf("nothing marked, yet FoldHTML =\n%s\nwant SanitizeHTML's\n%s", out, SanitizeHTML(tt.in))
			}
		})
	}
}

// TestFoldHTMLAgreesWithReply: outside the folds is what the text
// stripper keeps of the same HTML, as a message's Reply.
func TestFoldHTMLAgreesWithReply(t *testing.T) {
	for _, tt := range foldCases {
		t.Run(tt.name, func(t *testing.T) {
			text, _, _ := foldParts(FoldHTML(tt.in))
			if want := StripReply(HTMLToText(StripReplyHTML(tt.in))); text != want {
				t.Errorf("new text %q, text stripper %q", text, want)
			}
			raw := "From: a@b.example\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + tt.in
			e, err := Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if text, _, _ := foldParts(e.HTML); text != e.Reply && e.Reply != e.Text {
				t.Errorf("Reply %q, new text of HTML %q", e.Reply, text)
			}
		})
	}
}

func TestFoldHTMLForged(t *testing.T) {
	tests := []struct{ name, in, text, quote string }{
		{"forged quote hides text", `<p>Hi</p><div data-sb-fold="quote">Pay to the new IBAN</div>`, "Hi\n\nPay to the new IBAN", ""},
		{"forged upper case", `<p>Hi</p><DIV DATA-SB-FOLD="signature">Pay to the new IBAN</DIV>`, "Hi\n\nPay to the new IBAN", ""},
		{"forged on a paragraph", `<p data-sb-fold="quote">Pay to the new IBAN</p>`, "Pay to the new IBAN", ""},
		{"forged hint tag", `<p>Hi</p><div title="sb-fold-AAAAAAAAAAAAAAAAAAAAAAAAAA-0">Pay</div>`, "Hi\n\nPay", ""},
		{"forged beside a real quote",
			`<div data-sb-fold="quote">Pay to the new IBAN</div><div class="gmail_quote" data-sb-fold="signature">On Mon, Ann wrote:<blockquote>old</blockquote></div>`,
			"Pay to the new IBAN", "On Mon, Ann wrote:\n\n> old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := FoldHTML(tt.in)
			if bad := foldMarkupError(out); bad != "" {
				t.Errorf("%s in\n%s", bad, out)
			}
			text, quote, sig := foldParts(out)
			if text != tt.text || len(sig) > 0 || (tt.quote == "") != (len(quote) == 0) || len(quote) > 0 && quote[0] != tt.quote {
				t.Errorf("FoldHTML =\n%s\nnew text %q quote %q signature %q; want %q and %q", out, text, quote, sig, tt.text, tt.quote)
			}
		})
	}
}

// TestFoldHTMLSanitised: marking keeps the sanitiser's guarantees, inside
// the folds and out, and gives hints their own titles back.
func TestFoldHTMLSanitised(t *testing.T) {
	evil := `<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">x</a><a href="JaVaScRiPt&#58;alert(2)">y</a>` +
		`<svg onload="alert(1)"></svg><iframe src="https://evil.example"></iframe><div style="background:url(https://t.example/p.gif)" onclick="alert(1)">z</div>`
	tests := []struct{ name, in string }{
		{"in the new text", `<div>` + evil + `</div><div class="gmail_quote">On Mon, Ann wrote:<blockquote>old</blockquote></div>`},
		{"in the quote", `<div>Hi</div><div class="gmail_quote">On Mon, Ann wrote:<blockquote>` + evil + `</blockquote></div>`},
		{"in the signature", `<div>Hi</div><div class="gmail_signature">` + evil + `</div>`},
		{"in outlook history", `<div>Hi</div><hr><div id="divRplyFwdMsg"><b>From:</b> x</div>` + evil},
		{"in a text fold", `<div>Hi</div><div>-- </div>` + evil},
	}
	for _, v := range sanitizeVectors {
		tests = append(tests, struct{ name, in string }{"vector " + v.name, `<div>Hi</div><div class="gmail_quote">` + v.in + `</div><div>-- </div>` + v.in})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := FoldHTML(tt.in)
			if bad := unsafeHTML(out); bad != "" {
				t.Errorf("output contains %q:\n%s", bad, out)
			}
			if !strings.Contains(out, foldAttr) {
				t.Errorf("no fold in\n%s", out)
			}
			if bad := foldMarkupError(out); bad != "" {
				t.Errorf("%s in\n%s", bad, out)
			}
		})
	}

	out := FoldHTML(`<p>Hi</p><blockquote type="cite" title="Original">old</blockquote><blockquote type="cite">older</blockquote>`)
	if want := `<p>Hi</p><div data-sb-fold="quote"><blockquote title="Original">old</blockquote><blockquote>older</blockquote></div>`; out != want {
		t.Errorf("FoldHTML =\n%s\nwant\n%s", out, want)
	}
}
