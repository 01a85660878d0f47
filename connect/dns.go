package connect

import (
	"context"
	"errors"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// DNSCheck is what one record of the sending domain says.
type DNSCheck struct {
	Record string // "SPF", "DKIM" or "DMARC"
	Name   string // the name looked up
	Found  string // the record found, "" for none
	OK     bool
	// Advice says what to publish (or fix) when not OK.
	Advice string
}

// resolver is the DNS resolver of the checks: the configured one
// (host:port, SWITCHBOARD_DNS_RESOLVER), else the system's.
func (s *Service) resolver() *net.Resolver {
	if s.DNSResolver == "" {
		return net.DefaultResolver
	}
	addr := s.DNSResolver
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// CheckEmailDomain looks up the SPF, DKIM and DMARC records of the From
// address's domain and says what to publish where one is missing or does
// not match (admins).
func (s *Service) CheckEmailDomain(ctx context.Context, actor switchboard.Actor) ([]DNSCheck, error) {
	if err := require(actor, "check the e-mail domain"); err != nil {
		return nil, err
	}
	c := s.Current()
	a, err := mail.ParseAddress(c.EmailFrom)
	if c.EmailFrom == "" || err != nil {
		return nil, switchboard.Errorf(switchboard.EINVALID, "set the From address first: its domain is the one checked")
	}
	domain := strings.ToLower(a.Address[strings.LastIndexByte(a.Address, '@')+1:])
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r := s.resolver()
	lookup := func(name, prefix string) (string, error) {
		txts, err := r.LookupTXT(ctx, name)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		for _, t := range txts {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(t)), strings.ToLower(prefix)) {
				return t, nil
			}
		}
		return "", nil
	}
	var out []DNSCheck
	spf, err := lookup(domain, "v=spf1")
	if err != nil {
		return nil, switchboard.Errorf(switchboard.EINVALID, "DNS lookup of %s failed: %v", domain, err)
	}
	check := DNSCheck{Record: "SPF", Name: domain, Found: spf, OK: spf != ""}
	if !check.OK {
		check.Advice = `publish TXT at ` + domain + `: "v=spf1 include:<your relay's SPF domain> ~all" (your relay documents the include)`
	} else if strings.HasSuffix(strings.TrimSpace(spf), "+all") {
		check.OK, check.Advice = false, `"+all" lets anyone send as `+domain+`: end the record with "~all" or "-all"`
	}
	out = append(out, check)

	rec, have := s.DKIMPublished()
	if !have {
		out = append(out, DNSCheck{Record: "DKIM", Name: "(no DKIM key)", Advice: "generate a DKIM key below, then publish the record it shows"})
	} else {
		found, err := lookup(rec.Name, "v=DKIM1")
		if err != nil {
			return nil, switchboard.Errorf(switchboard.EINVALID, "DNS lookup of %s failed: %v", rec.Name, err)
		}
		check := DNSCheck{Record: "DKIM", Name: rec.Name, Found: found, OK: found != "" && dkimKey(found) == dkimKey(rec.TXT)}
		switch {
		case found == "":
			check.Advice = "publish TXT at " + rec.Name + `: "` + rec.TXT + `"`
		case !check.OK:
			check.Advice = "the published key is not the one Switchboard signs with: replace it with \"" + rec.TXT + `"`
		}
		out = append(out, check)
	}

	name := "_dmarc." + domain
	dmarc, err := lookup(name, "v=DMARC1")
	if err != nil {
		return nil, switchboard.Errorf(switchboard.EINVALID, "DNS lookup of %s failed: %v", name, err)
	}
	check = DNSCheck{Record: "DMARC", Name: name, Found: dmarc, OK: dmarc != ""}
	if !check.OK {
		check.Advice = `publish TXT at ` + name + `: "v=DMARC1; p=none; rua=mailto:dmarc-reports@` + domain + `" (then tighten p= to quarantine or reject once reports are clean)`
	}
	out = append(out, check)
	return out, nil
}

// dkimKey is the p= tag of a DKIM record, without spaces.
func dkimKey(record string) string {
	for _, tag := range strings.Split(record, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(tag), "=")
		if ok && strings.TrimSpace(k) == "p" {
			return strings.Join(strings.Fields(v), "")
		}
	}
	return ""
}
