package parse

import (
	"strings"
	"testing"
)

func TestStripReply(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "Hello there.\n", "Hello there."},
		{"gmail one line", "Sure, Tuesday works.\n\nOn Mon, Jan 8, 2024 at 10:15 AM Ann <ann@example.com> wrote:\n> Does Tuesday work?\n", "Sure, Tuesday works."},
		{"gmail wrapped", "Yes.\n\nOn Mon, Jan 8, 2024 at 10:15 AM Ann Smith <\nann@example.com> wrote:\n\n> Ok?\n", "Yes."},
		{"wrapped before wrote", "Yes.\n\nOn Mon, Jan 8, 2024 at 10:15 AM Ann Smith <ann@example.com>\nwrote:\n> Ok?", "Yes."},
		{"french", "Merci.\n\nLe lun. 8 janv. 2024 à 10:15, Ann <ann@example.com> a écrit :\n> Ok ?", "Merci."},
		{"german", "Danke.\n\nAm Mo., 8. Jan. 2024 um 10:15 Uhr schrieb Ann <ann@example.com>:\n> Ok?", "Danke."},
		{"spanish", "Gracias.\n\nEl lun, 8 ene 2024 a las 10:15, Ann (<ann@example.com>) escribió:\n> ¿Ok?", "Gracias."},
		{"outlook underscores", "Paid.\n\n________________________________\nFrom: Support <s@example.com>\nSent: Monday, January 8, 2024 5:44 PM\nTo: Me\nSubject: Invoice\n\nPlease pay.", "Paid."},
		{"outlook from sent", "Paid.\n\nFrom: Support <s@example.com>\nSent: Monday, January 8, 2024 5:44 PM\nTo: Me\n\nPlease pay.", "Paid."},
		{"outlook bold", "Paid.\n\n*From:* Support <s@example.com>\n*Sent:* Monday, January 8, 2024\n", "Paid."},
		{"outlook german", "Erledigt.\n\nVon: Support <s@example.com>\nGesendet: Montag, 8. Januar 2024 17:44\nAn: Ich\n", "Erledigt."},
		{"original message", "Fine.\n\n-----Original Message-----\nFrom: a\nquoted", "Fine."},
		{"original message spaced", "Fine.\n----- Original Message -----\nFrom: a", "Fine."},
		{"trailing quote block", "My answer.\n\n> earlier\n> text\n", "My answer."},
		{"inline reply kept", "> q1\na1\n> q2\na2\n> q3\n", "> q1\na1\n> q2\na2"},
		{"signature dash dash space", "Thanks!\n-- \nJane Doe\nACME", "Thanks!"},
		{"signature dash dash", "Thanks!\n--\nJane Doe", "Thanks!"},
		{"leading dashes are not a signature", "--\nfoo", "--\nfoo"},
		{"iphone", "Ok\n\nSent from my iPhone", "Ok"},
		{"android", "Ok\n\nSent from my Android phone with GMX Mail.", "Ok"},
		{"outlook ios", "Ok\n\nGet Outlook for iOS", "Ok"},
		{"outlook android with sig", "Ok\n\nGet Outlook for Android<https://aka.ms/AAb9ysg>", "Ok"},
		{"iphone then quote", "Ok\n\nSent from my iPhone\n\n> On 10 Jan 2024, at 11:02, A <a@b.c> wrote:\n>\n> Hi", "Ok"},
		{"crlf", "Line one\r\nLine two\r\n\r\nOn Mon, Jan 8, 2024, Ann wrote:\r\n> x\r\n", "Line one\nLine two"},
		{"trailing whitespace", "Hello   \n\n\t\n", "Hello"},
		{"leading blank lines", "\n\n  Hello", "  Hello"},
		{"only quote", "> all quoted\n> text", ""},
		{"only attribution", "On Mon, Jan 8, 2024 Ann wrote:\n> x", ""},
		{"on in a sentence is kept", "On Monday I tried again and it failed.\nPlease help.", "On Monday I tried again and it failed.\nPlease help."},
		{"from without sent is kept", "From: my phone\nI cannot log in.", "From: my phone\nI cannot log in."},
		{"sent from inside text is kept", "Sent from my iPhone, the app crashes.\nAny idea?", "Sent from my iPhone, the app crashes.\nAny idea?"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StripReply(tt.in); got != tt.want {
				t.Errorf("StripReply(%q) =\n%q\nwant\n%q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStripReplyHTML(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"gmail", `<div dir="ltr">New text</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon wrote:</div><blockquote class="gmail_quote">old</blockquote></div>`,
			`<div dir="ltr">New text</div><br/>`},
		{"gmail signature", `<div>Hi</div><div class="gmail_signature">Jane</div>`, `<div>Hi</div>`},
		{"apple", `<div>Yes</div><div><br><blockquote type="cite">On 10 Jan, A wrote:<br></blockquote></div><blockquote type="cite"><div>old</div></blockquote>`,
			`<div>Yes</div><div><br/></div>`},
		{"thunderbird", `<p>Done.</p><div class="moz-cite-prefix">On 1/1/24 A wrote:<br></div><blockquote type="cite">old</blockquote>`,
			`<p>Done.</p>`},
		{"outlook", `<div>Paid</div><div id="appendonsend"></div><hr style="display:inline-block"><div id="divRplyFwdMsg"><b>From:</b> S</div><div>old body</div>`,
			`<div>Paid</div>`},
		{"outlook nested", `<div class="WordSection1"><p>Paid</p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p><b>From:</b> S<br><b>Sent:</b> Monday</p></div></div><p>old</p></div><p>after</p>`,
			`<div class="WordSection1"><p>Paid</p><div></div></div>`},
		{"outlook hr on its own line", "<div>Paid</div>\n<hr>\n<div id=\"divRplyFwdMsg\"><b>From:</b> S</div><div>old</div>", "<div>Paid</div>\n"},
		{"body is not history", `<body id="appendonsend"><p>Hi</p></body>`, `<p>Hi</p>`},
		{"yahoo", `<div>Cancel please</div><div id="yahoo_quoted_1" class="yahoo_quoted"><div>On Thursday wrote:</div></div>`, `<div>Cancel please</div>`},
		{"no quote", `<p>Just <b>this</b></p>`, `<p>Just <b>this</b></p>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StripReplyHTML(tt.in); got != tt.want {
				t.Errorf("StripReplyHTML =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"blocks", `<div>One</div><div>Two</div><p>Three</p><p>Four</p>`, "One\nTwo\n\nThree\n\nFour"},
		{"br and entities (nbsp is a space)", `a&amp;b&nbsp;c<br>d &lt;e&gt; &#8364;`, "a&b c\nd <e> €"},
		{"whitespace collapse", "<p>  lots\n   of\t space  </p>", "lots of space"},
		{"script and style dropped", `<head><title>T</title><style>p{}</style></head><body><script>alert(1)</script><p>Hi</p></body>`, "Hi"},
		{"list", `<ul><li>one</li><li>two</li></ul>`, "- one\n- two"},
		{"blockquote", `<p>reply</p><blockquote>old<br>text</blockquote>`, "reply\n\n> old\n> text"},
		{"nested blockquote", `<blockquote>a<blockquote>b</blockquote></blockquote>`, "> a\n>\n>> b"},
		{"pre", "<pre>  x := 1\n\n  y</pre>", "  x := 1\n\n  y"},
		{"table", `<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>`, "a b\nc"},
		{"inline", `Hello <b>bold</b> and <a href="x">link</a>.`, "Hello bold and link."},
		{"img alt", `See <img src="cid:x" alt="chart"> here`, "See chart here"},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTMLToText(tt.in); got != tt.want {
				t.Errorf("HTMLToText(%q) =\n%q\nwant\n%q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRewriteCID(t *testing.T) {
	in := `<img src="cid:ii_1@x"> <img src="cid:unknown"> <img src="cid:a%20b"> <a href="cid:ii_1@x">x</a>`
	got := RewriteCID(in, func(cid string) (string, bool) {
		switch cid {
		case "ii_1@x":
			return `/api/v1/attachments/7?sig=a&b="c"`, true
		case "a%20b":
			return "/a/8", true
		}
		return "", false
	})
	want := `<img src="/api/v1/attachments/7?sig=a&amp;b=&#34;c&#34;"> <img src="cid:unknown"> <img src="/a/8"> <a href="cid:ii_1@x">x</a>`
	if got != want {
		t.Errorf("RewriteCID =\n%s\nwant\n%s", got, want)
	}
}

// sanitizeVectors are attacks on the sanitiser and what it must make of
// them.
var sanitizeVectors = []struct{ name, in, want string }{
	{"script", `<p>a</p><script>alert(1)</script>`, `<p>a</p>`},
	{"img onerror", `<img src=x onerror=alert(1)>ok`, `ok`},
	{"cid image kept", `<img src="cid:abc@x" onerror="alert(1)" alt="a">`, `<img src="cid:abc@x" alt="a">`},
	{"remote image", `<img src="https://t.example/p.gif">`, ``},
	{"protocol-relative image", `<img src="//t.example/p.gif">`, ``},
	{"data image", `<img src="data:image/png;base64,iVBORw0KGgo=">`, ``},
	{"svg onload", `<svg onload="alert(1)"><circle/></svg>x`, `x`},
	{"svg in img", `<svg><script>alert(1)</script></svg>y`, `y`},
	{"javascript link", `<a href="javascript:alert(1)">x</a>`, `x`},
	{"javascript link mixed case and entities", `<a href="JaVaScRiPt&#58;alert(1)">x</a>`, `x`},
	{"javascript link with tab", "<a href=\"java\tscript:alert(1)\">x</a>", `x`},
	{"data link", `<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>`, `x`},
	{"vbscript link", `<a href="vbscript:msgbox(1)">x</a>`, `x`},
	{"style expression", `<div style="width: expression(alert(1))">x</div>`, `<div>x</div>`},
	{"style url", `<div style="background-image: url(https://t.example/p.gif); color: red">x</div>`, `<div>x</div>`},
	{"style position dropped", `<div style="position:fixed;top:0;COLOR:Red !important;display:flex">x</div>`, `<div style="color: Red !important">x</div>`},
	{"style comment and escape", `<div style="color:red/**/;width:\\65xpression(1)">x</div>`, `<div>x</div>`},
	{"style rgb kept", `<p style="color: rgb(0, 0, 0);font-family:'Segoe UI', Arial">x</p>`, `<p style="color: rgb(0, 0, 0); font-family: &#39;Segoe UI&#39;, Arial">x</p>`},
	{"negative margin dropped", `<div style="margin-top:-400px;margin:0 0 8px 0">x</div>`, `<div style="margin: 0 0 8px 0">x</div>`},
	{"style element", `<style>body{background:url(https://t.example/x)}</style>x`, `x`},
	{"iframe", `<iframe src="https://evil.example"></iframe>x`, `x`},
	{"form", `<form action="https://evil.example"><input name="p"><button>Go</button></form>`, `Go`},
	{"object", `<object data="x.swf"></object><embed src="x.swf">x`, `x`},
	{"meta refresh", `<meta http-equiv="refresh" content="0;url=https://evil.example">x`, `x`},
	{"base", `<base href="https://evil.example/">x`, `x`},
	{"link mailto", `<a href="mailto:a@b.example">mail</a>`, `<a href="mailto:a@b.example" rel="nofollow noopener" target="_blank">mail</a>`},
	{"link target replaced", `<a href="https://x.example/" target="_top" rel="opener">x</a>`, `<a href="https://x.example/" rel="nofollow noopener" target="_blank">x</a>`},
	{"relative link", `<a href="/admin">x</a>`, `x`},
	{"class and id dropped", `<p class="btn" id="main">x</p>`, `<p>x</p>`},
	{"table attrs kept", `<table width="600" cellpadding="0"><tr><td align="center" bgcolor="#fff">x</td></tr></table>`, `<table width="600" cellpadding="0"><tr><td align="center" bgcolor="#fff">x</td></tr></table>`},
	{"mxss noscript", `<noscript><p title="</noscript><img src=x onerror=alert(1)>">`, `&#34;&gt;`},
	{"comment", `<!-- <script>alert(1)</script> -->x`, `x`},
}

func TestSanitizeHTMLVectors(t *testing.T) {
	for _, tt := range sanitizeVectors {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeHTML(tt.in)
			if strings.TrimSpace(got) != tt.want {
				t.Errorf("SanitizeHTML(%q) =\n%q\nwant\n%q", tt.in, got, tt.want)
			}
			if bad := unsafeHTML(got); bad != "" {
				t.Errorf("output contains %q", bad)
			}
		})
	}
}
