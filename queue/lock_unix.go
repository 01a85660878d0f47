//go:build unix

package queue

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockConsumers opens (creating it) the lock file at path and returns it
// holding a shared flock for as long as the queue is open. If it gets the
// exclusive lock first, no other live process has the queue open, so
// every lease in it is a dead process's: it runs release then, while no
// one else can open the queue. The kernel drops a process's locks when it
// dies, SIGKILL included.
func lockConsumers(path string, release func() error) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	fd := int(f.Fd())
	err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		if err := release(); err != nil {
			f.Close()
			return nil, err
		}
	case !errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Shared from now on (a downgrade, or a wait while another process
	// holds the exclusive lock to release its dead predecessors' leases):
	// while we hold it, no process opening the file sees itself alone.
	if err := syscall.Flock(fd, syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
