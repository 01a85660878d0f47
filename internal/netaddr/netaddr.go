// Package netaddr reads who a request comes from, for rate limits and
// logs.
package netaddr

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client returns the client's address and the key it is limited under:
// the peer, or with trustProxy the last X-Forwarded-For entry (the one
// the proxy in front added; set it only behind exactly one proxy that
// appends to it, or clients choose their own address). An IPv6 client's
// key is its /64, as one host holds a whole one.
func Client(r *http.Request, trustProxy bool) (addr, key string) {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if last := strings.TrimSpace(parts[len(parts)-1]); last != "" {
				host = last
			}
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		// Not an IP (a Unix socket, a test): every such client shares a key.
		return host, "raw:" + host
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return ip.String(), p.String()
	}
	return ip.String(), ip.String()
}
