package logfile

import (
	"fmt"
	"os"
	"sync"
)

// perm is the mode a new log file is created with (before the umask):
// written by its owner, read by its group, closed to others.
const perm = 0o640

// File is a log file opened for appending, safe for concurrent use.
// Create one with [Open]; the zero value is not usable.
type File struct {
	path string

	mu     sync.Mutex // guards f and closed; held across each write
	f      *os.File
	closed bool
}

// Open opens path for appending, creating it with mode 0640 if it does not
// exist. The parent directory must exist; Open does not create it.
func Open(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	return &File{path: path, f: f}, nil
}

// openAppend opens path the way every File does. Errors are *fs.PathError
// values, which name the path.
func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, perm)
}

// Path returns the path the File was opened with, which Reopen opens again.
func (f *File) Path() string { return f.path }

// Write appends p to the current file with one write(2), under the File's
// lock, so that concurrent Writes never interleave. (A second write(2)
// follows only a short write, which a regular file gives only when the
// disk is full or a size limit is hit.) After Close it returns an error
// that wraps [os.ErrClosed].
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, fmt.Errorf("logfile: write %s: %w", f.path, os.ErrClosed)
	}
	n, err := f.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("logfile: %w", err)
	}
	return n, nil
}

// Reopen opens the path again and sends later writes there, then closes
// the file written so far. Call it after logrotate has renamed the file
// (its default create mode): the earlier lines stay in the renamed file
// and a new file is created at the path. If nothing was moved, writes
// simply go on at the end of the same file.
//
// If the path cannot be opened (its directory was removed, or is not
// writable), Reopen returns the error, naming the path, and writes keep
// going to the file already open, so no line is lost; call Reopen again
// once the cause is fixed. After Close, Reopen returns an error that
// wraps [os.ErrClosed].
func (f *File) Reopen() error {
	// Open outside the lock: a slow filesystem must not stall the loggers.
	nf, err := openAppend(f.path)
	if err != nil {
		return fmt.Errorf("logfile: reopen: %w", err)
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		nf.Close()
		return fmt.Errorf("logfile: reopen %s: %w", f.path, os.ErrClosed)
	}
	old := f.f
	f.f = nf
	f.mu.Unlock()
	// No Write uses old any more: each one holds the lock while it writes.
	if err := old.Close(); err != nil {
		return fmt.Errorf("logfile: reopen: closing the old file: %w", err)
	}
	return nil
}

// Close closes the file. Later calls to Write, Reopen and Close return an
// error that wraps [os.ErrClosed].
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("logfile: close %s: %w", f.path, os.ErrClosed)
	}
	f.closed = true
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	return nil
}
