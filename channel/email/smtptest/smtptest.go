// Package smtptest is a small SMTP server that keeps what it receives: the
// demo's stand-in for a mail relay, so replies can be sent and looked at
// without a real one. (The tests deliver to a real server; see .ci/mail.sh.)
package smtptest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/emersion/go-smtp"
)

// Message is one mail as received.
type Message struct {
	From string
	To   []string
	Raw  []byte
}

// Server receives mail on a loopback port.
type Server struct {
	srv *smtp.Server
	l   net.Listener

	mu       sync.Mutex
	messages []Message
	notify   func(Message)
}

// Start listens on a free loopback port. notify, if set, is called for
// each message received.
func Start(notify func(Message)) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{l: l, notify: notify}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "localhost"
	s.srv.MaxMessageBytes = 40 << 20
	s.srv.MaxRecipients = 100
	go s.srv.Serve(l)
	return s, nil
}

// Addr is host:port.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Messages returns what arrived so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

type session struct {
	s    *Server
	from string
	to   []string
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	if len(ss.to) == 0 {
		return errors.New("no recipients")
	}
	m := Message{From: ss.from, To: ss.to, Raw: buf.Bytes()}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, m)
	ss.s.mu.Unlock()
	if ss.s.notify != nil {
		ss.s.notify(m)
	}
	return nil
}
