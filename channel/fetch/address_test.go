package fetch

import (
	"net/netip"
	"testing"
)

func TestNotPublic(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", // cloud metadata
		"100.64.0.1", "0.0.0.0", "0.1.2.3", "192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.7", "203.0.113.9",
		"192.88.99.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1", "ff05::2", "fec0::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", // IPv4-mapped
		"::127.0.0.1",                           // IPv4-compatible (deprecated)
		"64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", // NAT64 of the metadata address and loopback
		"64:ff9b:1::1", "100::1", "2001::1", "2001:db8::1", "2002:7f00:1::1", "3fff::1", "5f00::1",
	}
	for _, s := range refused {
		if why := NotPublic(netip.MustParseAddr(s)); why == "" {
			t.Errorf("%s counted as public", s)
		}
	}
	public := []string{
		"8.8.8.8", "1.1.1.1", "157.240.22.35", "54.172.60.1", "172.32.0.1", "100.128.0.1", "192.0.3.1",
		"2606:4700:4700::1111", "2a03:2880:f12f:83:face:b00c::25de", "::ffff:8.8.8.8", "64:ff9b::808:808",
	}
	for _, s := range public {
		if why := NotPublic(netip.MustParseAddr(s)); why != "" {
			t.Errorf("%s refused: %s", s, why)
		}
	}
	if why := NotPublic(netip.Addr{}); why == "" {
		t.Error("the zero Addr counted as public")
	}
	if got := NotPublic(netip.MustParseAddr("169.254.169.254")); got != "a link-local address (cloud metadata lives here)" {
		t.Errorf("reason = %q", got)
	}
}

// TestProviderBaseIsNoStandIn: configuring the provider's own API as the
// base URL exempts nothing from the address rule; anything else named is
// exempt on its exact host and port.
func TestProviderBaseIsNoStandIn(t *testing.T) {
	hosts := []string{"*.twilio.com"}
	for _, base := range []string{"https://api.twilio.com", "https://API.twilio.com./", "https://api.twilio.com:443/2010-04-01"} {
		f := New(Policy{Hosts: hosts, StandIns: []string{base}}, nil)
		if len(f.standInAddrs) != 0 || len(f.standIns) != 0 {
			t.Errorf("%s: exempt %v", base, f.standInAddrs)
		}
	}
	for base, addr := range map[string]string{
		"http://api.twilio.com":       "api.twilio.com:80", // not https: a stand-in, however odd
		"https://api.twilio.com:8443": "api.twilio.com:8443",
		"https://127.0.0.1:5000/":     "127.0.0.1:5000",
		"http://[::1]:5000":           "[::1]:5000",
		"http://Localhost:8080/v25.0": "localhost:8080",
	} {
		f := New(Policy{Hosts: hosts, StandIns: []string{base}}, nil)
		if len(f.standInAddrs) != 1 || !f.standInAddrs[addr] {
			t.Errorf("%s: exempt %v, want %s", base, f.standInAddrs, addr)
		}
	}
	for _, bad := range []string{"", "::", "ftp://x", "/relative"} {
		if f := New(Policy{Hosts: hosts, StandIns: []string{bad}}, nil); len(f.standInAddrs) != 0 {
			t.Errorf("%q: exempt %v", bad, f.standInAddrs)
		}
	}
}
