package email

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/imap"
)

// MaxFailing is how long a fetched mail may keep failing before it is set
// aside as a dead letter: long enough that an outage of the queue or the
// object store loses nothing to the dead letters, short enough that one
// mail cannot hold up its mailbox for good.
const MaxFailing = time.Hour

// DeadLetters keeps what can never be delivered, for an operator.
type DeadLetters interface {
	DeadLetter(ctx context.Context, ch switchboard.Channel, payload []byte, cause string) error
}

// IMAPDelivery hands fetched mail to the channel for the IMAP fetcher
// (imap.Fetcher.Deliver). A malformed mail is accepted like any other
// (Accept recovers it); one the channel refuses (an empty message) is
// kept as a dead letter and reported done, so that the mailbox moves on
// instead of fetching it for ever; mail that keeps failing for another
// reason (a bug, a limit of the database it trips) is set aside the same
// way once it has failed for MaxFailing.
type IMAPDelivery struct {
	Channel     *Channel
	DeadLetters DeadLetters
	Clock       switchboard.Clock
	OnAccepted  func()

	mu    sync.Mutex
	since map[string]time.Time // when each failing mail first failed
}

// Deliver is an imap.Deliver.
func (d *IMAPDelivery) Deliver(ctx context.Context, msg imap.Message) error {
	_, err := d.Channel.Accept(ctx, msg.Raw, "imap:"+msg.Mailbox)
	if err == nil {
		d.forget(msg)
		if d.OnAccepted != nil {
			d.OnAccepted()
		}
		return nil
	}
	if ctx.Err() != nil {
		return err // shutting down
	}
	if switchboard.ErrorCode(err) != switchboard.EINVALID && d.failingFor(msg) < MaxFailing {
		return err // the fetcher retries it after a backoff
	}
	d.forget(msg)
	d.Channel.cfg.Logger.Warn("imap: mail kept as a dead letter", "mailbox", msg.Mailbox, "uid", msg.UID, "err", err)
	return d.DeadLetters.DeadLetter(ctx, switchboard.ChannelEmail, msg.Raw, err.Error())
}

func mailKey(msg imap.Message) string {
	return fmt.Sprintf("%s/%d/%d", msg.Mailbox, msg.UIDValidity, msg.UID)
}

func (d *IMAPDelivery) now() time.Time {
	if d.Clock == nil {
		return time.Now()
	}
	return d.Clock.Now()
}

// failingFor records a failure and says how long the mail has failed.
func (d *IMAPDelivery) failingFor(msg imap.Message) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.since == nil {
		d.since = map[string]time.Time{}
	}
	first, ok := d.since[mailKey(msg)]
	if !ok {
		d.since[mailKey(msg)] = d.now()
		return 0
	}
	return d.now().Sub(first)
}

func (d *IMAPDelivery) forget(msg imap.Message) {
	d.mu.Lock()
	delete(d.since, mailKey(msg))
	d.mu.Unlock()
}

// MailboxStates keeps IMAP positions in the inbox (an imap.State).
type MailboxStates struct {
	Inbox interface {
		MailboxState(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error)
		SaveMailboxState(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error
	}
}

// Load returns a mailbox's UIDVALIDITY and last UID; zeros if never saved.
func (s MailboxStates) Load(ctx context.Context, mailbox string) (uint32, uint32, error) {
	return s.Inbox.MailboxState(ctx, mailbox)
}

// Save records a mailbox's position.
func (s MailboxStates) Save(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error {
	return s.Inbox.SaveMailboxState(ctx, mailbox, uidValidity, lastUID)
}
