package connect_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
	"github.com/switchboard-inbox/switchboard/connect"
)

// dnsStub answers TXT queries from records over UDP, as a resolver would.
func dnsStub(t *testing.T, records map[string][]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			name := strings.TrimSuffix(q.Name.String(), ".")
			txts, known := records[name]
			rcode := dnsmessage.RCodeSuccess
			if !known {
				rcode = dnsmessage.RCodeNameError
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: rcode})
			b.EnableCompression()
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if q.Type == dnsmessage.TypeTXT {
				for _, txt := range txts {
					// A long record is several strings of at most 255
					// bytes, as DKIM keys are published.
					var parts []string
					for len(txt) > 255 {
						parts, txt = append(parts, txt[:255]), txt[255:]
					}
					b.TXTResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.TXTResource{TXT: append(parts, txt)})
				}
			}
			msg, err := b.Finish()
			if err == nil {
				pc.WriteTo(msg, addr)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// TestCheckEmailDomain: SPF, DKIM and DMARC looked up through the
// configured resolver; what is missing or wrong comes with what to
// publish.
func TestCheckEmailDomain(t *testing.T) {
	d, key, err := smtpout.GenerateDKIM("shop.example", "sb1")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := smtpout.GenerateDKIM("shop.example", "sb1")
	if err != nil {
		t.Fatal(err)
	}
	admin := switchboard.Actor{ID: "a", Role: switchboard.RoleAdmin}
	settings := connect.Settings{EmailFrom: "Shop <help@shop.example>", DKIMSelector: "sb1", DKIMKey: string(key)}
	svc := func(records map[string][]string) *connect.Service {
		return &connect.Service{Current: func() connect.Settings { return settings }, DNSResolver: dnsStub(t, records)}
	}
	byRecord := func(cs []connect.DNSCheck) map[string]connect.DNSCheck {
		out := map[string]connect.DNSCheck{}
		for _, c := range cs {
			out[c.Record] = c
		}
		return out
	}

	all := svc(map[string][]string{
		"shop.example":                {"google-site-verification=abc", "v=spf1 include:_spf.relay.example ~all"},
		"sb1._domainkey.shop.example": {d.TXTRecord()},
		"_dmarc.shop.example":         {"v=DMARC1; p=quarantine"},
	})
	got, err := all.CheckEmailDomain(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []string{"SPF", "DKIM", "DMARC"} {
		if c := byRecord(got)[rec]; !c.OK || c.Found == "" || c.Advice != "" {
			t.Errorf("%s: %+v, want found and OK", rec, c)
		}
	}

	none := svc(map[string][]string{"sb1._domainkey.shop.example": {other.TXTRecord()}})
	got, err = none.CheckEmailDomain(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	m := byRecord(got)
	if c := m["SPF"]; c.OK || !strings.Contains(c.Advice, `"v=spf1 include:`) {
		t.Errorf("missing SPF: %+v", c)
	}
	if c := m["DKIM"]; c.OK || c.Found == "" || !strings.Contains(c.Advice, d.TXTRecord()) {
		t.Errorf("another key published: %+v, want the advice to publish ours", c)
	}
	if c := m["DMARC"]; c.OK || c.Name != "_dmarc.shop.example" || !strings.Contains(c.Advice, "v=DMARC1; p=none") {
		t.Errorf("missing DMARC: %+v", c)
	}

	open := svc(map[string][]string{"shop.example": {"v=spf1 +all"}})
	got, _ = open.CheckEmailDomain(context.Background(), admin)
	if c := byRecord(got)["SPF"]; c.OK || !strings.Contains(c.Advice, "+all") {
		t.Errorf("an SPF record allowing anyone: %+v", c)
	}
	if _, err := all.CheckEmailDomain(context.Background(), switchboard.Actor{ID: "x", Role: switchboard.RoleAgent}); switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
		t.Errorf("an agent: %v", err)
	}
}
