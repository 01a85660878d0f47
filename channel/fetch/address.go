package fetch

import "net/netip"

// special is one special-purpose block and what it is, for the refusal.
type special struct {
	prefix netip.Prefix
	what   string
}

// specialV4 are the IPv4 blocks of IANA's special-purpose registry (RFC
// 6890 and later) that are not globally reachable, plus multicast and the
// reserved 240/4 (which holds the broadcast address).
var specialV4 = []special{
	{netip.MustParsePrefix("0.0.0.0/8"), "a \"this network\" address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata lives here)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
}

var (
	// globalV6 is the only block IANA allocates global unicast from;
	// everything outside it (loopback, unspecified, link-local, unique
	// local, multicast, discard, IPv4-compatible) is refused.
	globalV6 = netip.MustParsePrefix("2000::/3")
	// nat64 embeds an IPv4 address, which is what is really reached.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
)

// specialV6 are the blocks inside 2000::/3 that are not globally reachable
// or that tunnel to an IPv4 address we cannot see (Teredo, 6to4).
var specialV6 = []special{
	{netip.MustParsePrefix("2001::/23"), "an IETF protocol assignment (Teredo and others)"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4 address"},
	{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
}

// NotPublic says why addr is not a public unicast address that a provider's
// media may live on ("a loopback address", ...), or "" when it is one.
// IPv4-mapped IPv6 addresses and NAT64 addresses are judged by the IPv4
// address they carry.
func NotPublic(addr netip.Addr) string {
	addr = addr.WithZone("").Unmap()
	if !addr.IsValid() {
		return "not an IP address"
	}
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:]))
	}
	if addr.Is4() {
		for _, s := range specialV4 {
			if s.prefix.Contains(addr) {
				return s.what
			}
		}
		return ""
	}
	switch {
	case addr.IsUnspecified():
		return "the unspecified address"
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsLinkLocalUnicast():
		return "a link-local address"
	case addr.IsMulticast():
		return "a multicast address"
	case addr.IsPrivate():
		return "a unique local (private) address"
	case !globalV6.Contains(addr):
		return "not a global unicast address"
	}
	for _, s := range specialV6 {
		if s.prefix.Contains(addr) {
			return s.what
		}
	}
	return ""
}
