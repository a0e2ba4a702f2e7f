//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// lockFile opens (creating it 0600 if needed) the lock file at path and
// takes an exclusive flock on it without waiting; errLockHeld when another
// open file holds it. flock belongs to the open file, so the kernel drops
// it when the file is closed or the process dies, kill -9 included. It is
// independent of the POSIX record locks SQLite takes on the database.
func lockFile(path string) (*os.File, error) {
	f, err := createPrivateFile(path, false, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var lockErr error
	if err := rc.Control(func(fd uintptr) {
		lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		lockErr = err
	}
	if lockErr != nil {
		f.Close()
		if errors.Is(lockErr, syscall.EWOULDBLOCK) {
			return nil, errLockHeld
		}
		return nil, lockErr
	}
	return f, nil
}
