package imap

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePlainServer greets like an IMAP server that offers no STARTTLS and
// records every command line it is sent.
func fakePlainServer(t *testing.T) (addr string, lines func() []string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var got []string
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					mu.Lock()
					got = append(got, strings.TrimSpace(line))
					mu.Unlock()
					tag, _, _ := strings.Cut(line, " ")
					c.Write([]byte("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + " OK done\r\n"))
				}
			}()
		}
	}()
	return l.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// A server that offers no STARTTLS gets no password unless it is on this
// machine or the URL allows clear text: someone on the path could have
// stripped the offer.
func TestNoClearTextLoginOffLoopback(t *testing.T) {
	addr, lines := fakePlainServer(t)
	mb, err := ParseURL("imap://u:secret@" + addr + "/INBOX")
	if err != nil {
		t.Fatal(err)
	}
	mb.Host = "mail.example.com" // as if reached over the network
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = dial(ctx, mb, nil)
	if err == nil || !strings.Contains(err.Error(), "refusing to log in in clear text") {
		t.Fatalf("dial = %v, want a refusal", err)
	}
	for _, l := range lines() {
		if strings.Contains(strings.ToUpper(l), "LOGIN") || strings.Contains(strings.ToUpper(l), "AUTHENTICATE") {
			t.Errorf("the server was sent %q", l)
		}
	}
	// On loopback the same server is used as is.
	mb.Host = "127.0.0.1"
	c, err := dial(ctx, mb, nil)
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
	c.Close()
	for host, want := range map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true, "127.9.9.9": true, "192.0.2.2": false, "mail.example.com": false} {
		if isLoopback(host) != want {
			t.Errorf("isLoopback(%q) = %v", host, !want)
		}
	}
}
