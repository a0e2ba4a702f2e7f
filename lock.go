package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// errLockHeld is what lockFile returns when another open file, in this
// process or another, holds the lock.
var errLockHeld = errors.New("lock held")

// dbLock is a running server's hold on its database: an exclusive lock on
// the file <db>.lock beside it, which records the holder's pid. Two servers
// on one file would restore the same numbers twice; the admin commands
// (user, numbers import, backup, check) do not take it and keep working
// beside the server. The operating system drops the lock when the process
// ends, however it ends, so a crash leaves no stale lock behind.
type dbLock struct{ f *os.File }

// lockDatabase takes the lock of the database at path; it must be taken
// before the database is opened. A second server on the same file gets an
// error at once that says the file is in use and by which pid.
func lockDatabase(path string) (*dbLock, error) {
	if err := checkDBFolder(path); err != nil {
		return nil, err
	}
	lockPath := path + ".lock"
	f, err := lockFile(lockPath)
	if errors.Is(err, errLockHeld) {
		return nil, fmt.Errorf("database %s is in use by another bulkrestore serve (%s); stop it first or give another -db",
			path, lockHolder(lockPath))
	}
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", path, err)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock database %s: record pid: %w", path, err)
	}
	return &dbLock{f: f}, nil
}

// writePID replaces the lock file's content with this process's id.
func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// lockHolder names the process that holds a lock file, as far as its
// content tells ("pid 1234", else "pid unknown": the holder may have taken
// the lock an instant ago and not written its pid yet).
func lockHolder(lockPath string) string {
	b, err := os.ReadFile(lockPath)
	if err != nil {
		return "pid unknown"
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return "pid unknown"
	}
	return "pid " + strconv.Itoa(pid)
}

// release forgets the pid and drops the lock; call it after the database
// is closed.
func (l *dbLock) release() error {
	return errors.Join(l.f.Truncate(0), l.f.Close())
}
