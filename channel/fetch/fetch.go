// Package fetch is the one way Switchboard downloads what a provider's
// webhook points at: MMS media, voicemail recordings, WhatsApp media and
// Messenger and Instagram attachments. A signed webhook proves which
// account sent it, not that its URL is harmless (a leaked token signs
// anything, and a customer shapes some of the payload), so every fetch is
// held to the provider's documented media hosts and kept off internal
// addresses:
//
//   - only https, and only hosts on the provider's list (Policy.Hosts), on
//     port 443, without credentials in the URL;
//   - the channel's configured API base URL, when it is not the provider's
//     own (a stand-in in tests and the demo), is allowed too, over http or
//     https, whatever address it has: the operator named it;
//   - every other connection is checked at connect time, on the address
//     actually dialled, so DNS rebinding cannot slip past: private,
//     loopback, link-local, unspecified, multicast and other
//     special-purpose addresses (IPv4 and IPv6, IPv4-mapped and NAT64
//     included) are refused;
//   - every redirect is held to the same rules, at most Policy.MaxRedirects
//     of them, and an Authorization header never follows a redirect to
//     another origin;
//   - no proxy from the environment is used (the proxy, not us, would pick
//     the address), each fetch has a total timeout, and bodies are read
//     through a limit.
//
// A refusal is a *Refusal naming the rule; find it with errors.As.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Defaults for Policy's zero values.
const (
	DefaultMaxRedirects = 5
	DefaultTimeout      = 30 * time.Second
)

// maxErrorBody bounds how much of an error answer is read for its message.
const maxErrorBody = 64 << 10

// Rules a Refusal names.
const (
	RuleURL         = "url"         // not an absolute http(s) URL
	RuleScheme      = "scheme"      // not https (http only for a stand-in)
	RuleCredentials = "credentials" // user:password@ in the URL
	RuleHost        = "host"        // neither a provider media host nor a stand-in
	RulePort        = "port"        // a provider host on a port other than 443
	RuleAddress     = "address"     // the address dialled is not public
	RuleRedirects   = "redirects"   // too many redirects
)

// Refusal is a fetch the policy refused, before or during the request.
type Refusal struct {
	Rule   string // one of the Rule constants
	Target string // scheme://host[:port] of the URL, or the address dialled
	Reason string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%s refused by the %s rule: %s", r.Target, r.Rule, r.Reason)
}

// Unwrap gives a refusal its switchboard code: EINVALID for what is not
// an http(s) URL at all, EFORBIDDEN for a URL or address that is not
// allowed.
func (r *Refusal) Unwrap() error {
	code := switchboard.EFORBIDDEN
	if r.Rule == RuleURL {
		code = switchboard.EINVALID
	}
	return &switchboard.Error{Code: code, Message: r.Error()}
}

// IsRefusal reports whether err is, or wraps, a *Refusal.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// Policy says where one provider's media may come from.
type Policy struct {
	// Provider names the provider in refusals ("Twilio", "Meta").
	Provider string
	// Hosts are the provider's documented media hosts, fetched over https
	// on port 443 only: an exact name ("lookaside.fbsbx.com") or
	// "*.example.com" for any name below example.com (not example.com
	// itself).
	Hosts []string
	// StandIns are base URLs configured in place of the provider's API
	// (the channel's API base URL: a local stand-in in tests and the
	// demo). Their origins (scheme, host and port) are allowed over http
	// or https, and their addresses are not checked. A base URL that is
	// https on one of Hosts on port 443 is the provider itself and gets no
	// such exemption, so the default configuration allows no internal
	// address at all.
	StandIns []string
	// MaxRedirects is how many redirects are followed (default 5).
	MaxRedirects int
	// Timeout bounds each fetch, body included (default 30 s).
	Timeout time.Duration
}

// Fetcher fetches under one Policy. It is safe for concurrent use; make
// one per channel and keep it, as it holds a connection pool.
type Fetcher struct {
	provider     string
	hosts        []string
	standIns     map[string]bool // origins
	standInAddrs map[string]bool // host:port dialled without the address rule
	maxRedirects int
	client       *http.Client
	err          error // a base client whose transport cannot be restricted
}

// New returns a Fetcher for p. base is the client configured for the
// provider (nil: http.DefaultTransport's settings): its TLS settings (the
// certificates of stand-ins) and a shorter Timeout are kept; its proxy,
// dialer, redirect policy and cookie jar are not. A base whose Transport
// is not an *http.Transport cannot be held to the address rule: every
// fetch then fails with an error saying so.
func New(p Policy, base *http.Client) *Fetcher {
	f := &Fetcher{
		provider:     p.Provider,
		standIns:     map[string]bool{},
		standInAddrs: map[string]bool{},
		maxRedirects: p.MaxRedirects,
	}
	if f.provider == "" {
		f.provider = "the provider"
	}
	if f.maxRedirects <= 0 {
		f.maxRedirects = DefaultMaxRedirects
	}
	for _, h := range p.Hosts {
		f.hosts = append(f.hosts, normalHost(h))
	}
	for _, s := range p.StandIns {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			continue
		}
		host, port := normalHost(u.Hostname()), portOf(u)
		if u.Scheme == "https" && port == "443" && f.listed(host) {
			continue // the provider's own API: no exemption
		}
		f.standIns[u.Scheme+"://"+net.JoinHostPort(host, port)] = true
		f.standInAddrs[net.JoinHostPort(host, port)] = true
	}

	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if base == nil {
		base = &http.Client{}
	}
	if base.Timeout > 0 && base.Timeout < timeout {
		timeout = base.Timeout
	}
	var tr *http.Transport
	switch t := base.Transport.(type) {
	case nil:
		if d, ok := http.DefaultTransport.(*http.Transport); ok {
			tr = d.Clone()
		} else {
			tr = &http.Transport{ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second}
		}
	case *http.Transport:
		tr = t.Clone()
	default:
		f.err = fmt.Errorf("fetch: the HTTP client's transport is a %T; only an *http.Transport can be held to the address rule", t)
	}
	if tr != nil {
		tr.Proxy = nil
		// Cleared so that DialContext is the only way out (the deprecated
		// Dial and DialTLS would otherwise still be used when set).
		tr.Dial, tr.DialTLS, tr.DialTLSContext = nil, nil, nil
		tr.DialContext = f.dial
	}
	f.client = &http.Client{
		Transport:     guard{f: f, next: tr},
		CheckRedirect: f.checkRedirect,
		Timeout:       timeout,
	}
	return f
}

// Client returns the restricted client, for callers that need the whole
// response (a Graph API call): every request it sends, redirects
// included, is held to the policy.
func (f *Fetcher) Client() *http.Client { return f.client }

// Check holds rawURL to the policy's URL rules (scheme, host, port, no
// credentials) without connecting; the address rule can only be checked
// when dialling. The error is a *Refusal.
func (f *Fetcher) Check(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return &Refusal{Rule: RuleURL, Target: truncate(rawURL), Reason: "not a URL"}
	}
	return f.check(u)
}

func (f *Fetcher) check(u *url.URL) error {
	if !u.IsAbs() || u.Opaque != "" || u.Hostname() == "" {
		return &Refusal{Rule: RuleURL, Target: truncate(u.String()), Reason: "not an absolute http(s) URL"}
	}
	scheme, host, port := strings.ToLower(u.Scheme), normalHost(u.Hostname()), portOf(u)
	target := scheme + "://" + u.Host
	switch {
	case scheme != "http" && scheme != "https":
		return &Refusal{Rule: RuleURL, Target: target, Reason: "not an absolute http(s) URL"}
	case u.User != nil:
		return &Refusal{Rule: RuleCredentials, Target: target, Reason: "the URL carries credentials"}
	case f.standIns[scheme+"://"+net.JoinHostPort(host, port)]:
		return nil
	case !f.listed(host):
		return &Refusal{Rule: RuleHost, Target: target, Reason: fmt.Sprintf("%s is not one of %s's media hosts (%s) nor the configured API",
			host, f.provider, strings.Join(f.hosts, ", "))}
	case scheme != "https":
		return &Refusal{Rule: RuleScheme, Target: target, Reason: fmt.Sprintf("only https is fetched from %s's media hosts", f.provider)}
	case port != "443":
		return &Refusal{Rule: RulePort, Target: target, Reason: fmt.Sprintf("%s's media hosts are fetched on port 443 only", f.provider)}
	}
	return nil
}

func (f *Fetcher) listed(host string) bool {
	for _, h := range f.hosts {
		if host == h || strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) {
			return true
		}
	}
	return false
}

// dial connects, checking the address connected to unless it is a
// stand-in's. Control runs on each address the dialer tries, after name
// resolution, so a name that resolves to an internal address (at once or
// on a second lookup) is refused there.
func (f *Fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !f.standInAddrs[strings.ToLower(addr)] {
		d.ControlContext = checkAddress
	}
	return d.DialContext(ctx, network, addr)
}

func checkAddress(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &Refusal{Rule: RuleAddress, Target: address, Reason: "not an IP address and port"}
	}
	if why := NotPublic(ap.Addr()); why != "" {
		return &Refusal{Rule: RuleAddress, Target: address, Reason: fmt.Sprintf("%s is %s", ap.Addr(), why)}
	}
	return nil
}

// checkRedirect caps redirects, holds each to the URL rules (the guard
// would too; this gives the clearer error) and keeps credentials with the
// origin they were given for: net/http keeps Authorization for any port of
// the same host name.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.maxRedirects {
		return &Refusal{Rule: RuleRedirects, Target: req.URL.Scheme + "://" + req.URL.Host, Reason: fmt.Sprintf("more than %d redirects", f.maxRedirects)}
	}
	if origin(req.URL) != origin(via[0].URL) {
		req.Header.Del("Authorization")
	}
	return f.check(req.URL)
}

// guard holds every request to the URL rules before it leaves, so that a
// caller of Client cannot skip them either.
type guard struct {
	f    *Fetcher
	next http.RoundTripper
}

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	err := g.f.err
	if err == nil {
		err = g.f.check(req.URL)
	}
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// Response is a fetched answer. Body is the whole body of a 2xx answer, or
// the start of any other (enough for its error message).
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// OK reports a 2xx status.
func (r *Response) OK() bool { return r.StatusCode >= 200 && r.StatusCode <= 299 }

// Get fetches rawURL with header (credentials, Accept). A 2xx body larger
// than maxBytes is refused with an ETOOLARGE *switchboard.Error, before
// reading when Content-Length says so. Any status comes back as a
// Response; errors are refusals (*Refusal), transport failures and
// timeouts, wrapped by net/http with the URL.
func (f *Fetcher) Get(ctx context.Context, rawURL string, header http.Header, maxBytes int64) (*Response, error) {
	if f.err != nil {
		return nil, f.err
	}
	if maxBytes <= 0 {
		return nil, switchboard.Errorf(switchboard.EINVALID, "fetch: maxBytes must be positive")
	}
	if err := f.Check(rawURL); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &Refusal{Rule: RuleURL, Target: truncate(rawURL), Reason: err.Error()}
	}
	for k, v := range header {
		req.Header[k] = slices.Clone(v)
	}
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &Response{StatusCode: resp.StatusCode, Header: resp.Header}
	if !out.OK() {
		out.Body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return out, nil
	}
	if resp.ContentLength > maxBytes {
		return nil, TooLarge(maxBytes)
	}
	// One byte over the limit is enough to know it is too large.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s://%s: %w", resp.Request.URL.Scheme, resp.Request.URL.Host, err)
	}
	// A body cut off by the timeout can read as complete (HTTP/2 may end
	// the stream before the cancellation is seen): a fetch that outlived
	// its time never counts as whole.
	if t := f.client.Timeout; t > 0 && time.Since(start) >= t {
		return nil, fmt.Errorf("reading %s://%s: the fetch took longer than %s", resp.Request.URL.Scheme, resp.Request.URL.Host, t)
	}
	if int64(len(body)) > maxBytes {
		return nil, TooLarge(maxBytes)
	}
	out.Body = body
	return out, nil
}

// TooLarge is the error for a body over maxBytes.
func TooLarge(maxBytes int64) error {
	return switchboard.Errorf(switchboard.ETOOLARGE, "media is larger than %d bytes", maxBytes)
}

// origin is scheme://host:port, lower-cased, with the default port.
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(normalHost(u.Hostname()), portOf(u))
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "http") {
		return "80"
	}
	return "443"
}

// normalHost lower-cases a host name and drops a final dot, so
// "API.Twilio.com." is "api.twilio.com".
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// truncate keeps a refused non-URL short in messages and logs.
func truncate(s string) string {
	if len(s) <= 100 {
		return s
	}
	return strings.ToValidUTF8(s[:100], "") + "…"
}
