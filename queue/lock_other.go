//go:build !unix

package queue

import (
	"fmt"
	"os"
)

// lockConsumers, without flock, trusts the rule that one process owns the
// data directory: every lease found at open is a dead process's.
func lockConsumers(path string, release func() error) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := release(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
