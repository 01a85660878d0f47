package smtpout_test

import (
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

// BenchmarkBuildSign is the CPU side of one outbound mail: build a reply
// with a 10 KB HTML body (and its text part) and DKIM-sign it.
func BenchmarkBuildSign(b *testing.B) {
	m := fullMail()
	m.Attachments = nil
	para := "<p>Thanks for your patience: your order #1042 left our warehouse today and should reach you on Thursday.</p>\n"
	m.HTML = strings.Repeat(para, 10*1024/len(para)+1)[:10*1024]
	m.Text = strings.Repeat("Thanks for your patience: your order #1042 left our warehouse today.\n", 60)
	for _, name := range []string{"rsa", "ed25519"} {
		d := testDKIMs()[name]
		b.Run(name, func(b *testing.B) {
			var n int
			for b.Loop() {
				raw, err := smtpout.Build(m)
				if err != nil {
					b.Fatal(err)
				}
				signed, err := d.Sign(raw)
				if err != nil {
					b.Fatal(err)
				}
				n = len(signed)
			}
			b.SetBytes(int64(n))
		})
	}
	b.Run("build-only", func(b *testing.B) {
		for b.Loop() {
			if _, err := smtpout.Build(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
