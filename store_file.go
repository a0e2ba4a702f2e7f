package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// privateMode is the mode of every file bulkrestore creates beside its
// database: the database holds key hashes and webhook secrets.
const privateMode = 0o600

// checkDBFolder fails, naming the folder, when the folder that should hold
// the database file does not exist; SQLite would only say "unable to open
// database file (14)".
func checkDBFolder(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("database %s: folder %s does not exist; create it first", path, dir)
	case err != nil:
		return fmt.Errorf("database %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("database %s: %s is not a folder", path, dir)
	}
	return nil
}

// createPrivateFile creates path with mode 0600 whatever the umask and
// opens it with flag (os.O_RDWR or os.O_WRONLY). An existing file is an
// error (fs.ErrExist) when exclusive; else it is opened as it is, its mode
// untouched.
func createPrivateFile(path string, exclusive bool, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|os.O_CREATE|os.O_EXCL, privateMode)
	if errors.Is(err, fs.ErrExist) && !exclusive {
		return os.OpenFile(path, flag, 0)
	}
	if err != nil {
		return nil, err
	}
	// The umask may have taken bits away (it never adds any): set the mode
	// whole, so the owner can always read and write the file.
	if err := f.Chmod(privateMode); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// ensureDBFile creates the database file, empty and private, when it does
// not exist yet, so that SQLite opens a file of mode 0600 and gives its
// -wal and -shm files the same mode.
func ensureDBFile(path string) error {
	if err := checkDBFolder(path); err != nil {
		return err
	}
	f, err := createPrivateFile(path, true, os.O_WRONLY)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", path, err)
	}
	return f.Close()
}
