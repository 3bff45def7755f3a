//go:build unix

package logfile_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wssgate/wssgate/logfile"
)

// open opens path with logfile.Open and closes it at cleanup.
func open(t *testing.T, path string) *logfile.File {
	t.Helper()
	f, err := logfile.Open(path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// write writes s to f and fails the test on error or a short write.
func write(t *testing.T, f *logfile.File, s string) {
	t.Helper()
	n, err := f.Write([]byte(s))
	if err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v; want %d, nil", s, n, err, len(s))
	}
}

// contents returns the text of the file at path.
func contents(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpenWrite(t *testing.T) {
	tests := []struct {
		name     string
		existing string // the file's text before Open; "" means no file
		writes   []string
		want     string
	}{
		{"new file", "", []string{"a\n", "b\n"}, "a\nb\n"},
		{"appends to an existing file", "old\n", []string{"new\n"}, "old\nnew\n"},
		{"empty write", "", []string{"", "x\n"}, "x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			if tt.existing != "" {
				if err := os.WriteFile(path, []byte(tt.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f := open(t, path)
			if got := f.Path(); got != path {
				t.Errorf("Path() = %q, want %q", got, path)
			}
			for _, s := range tt.writes {
				write(t, f, s)
			}
			if got := contents(t, path); got != tt.want {
				t.Errorf("file holds %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOpenCreatesWithMode0640(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The umask may take bits away from 0640 but never adds any.
	if got := fi.Mode().Perm(); got&^0o640 != 0 || got&0o600 != 0o600 {
		t.Errorf("mode %v, want -rw-r----- (less what the umask takes from the group)", got)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		want error // matched with errors.Is; nil means any error
	}{
		{"parent directory missing", filepath.Join(dir, "missing", "access.log"), fs.ErrNotExist},
		{"path is a directory", dir, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := logfile.Open(tt.path)
			if err == nil {
				f.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tt.path)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Open(%q) = %v, want an error matching %v", tt.path, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "logfile: ") || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q: want the logfile: prefix and the path", err)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	tests := []struct {
		name    string
		rotate  func(t *testing.T, path string) // what happens to the file before Reopen
		old     string                          // where the earlier lines end up; "" means nowhere to check
		wantOld string
		wantNew string // the file at the path after the later write
	}{
		{
			name: "renamed away (logrotate nocreate)",
			rotate: func(t *testing.T, path string) {
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
			},
			old:     ".1",
			wantOld: "before\n",
			wantNew: "after\n",
		},
		{
			name: "renamed away and recreated empty (logrotate create)",
			rotate: func(t *testing.T, path string) {
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, nil, 0o640); err != nil {
					t.Fatal(err)
				}
			},
			old:     ".1",
			wantOld: "before\n",
			wantNew: "after\n",
		},
		{
			name:    "nothing moved",
			rotate:  func(t *testing.T, path string) {},
			wantNew: "before\nafter\n",
		},
		{
			name: "removed",
			rotate: func(t *testing.T, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			},
			wantNew: "after\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			f := open(t, path)
			write(t, f, "before\n")
			tt.rotate(t, path)
			if err := f.Reopen(); err != nil {
				t.Fatalf("Reopen: %v", err)
			}
			write(t, f, "after\n")
			if got := contents(t, path); got != tt.wantNew {
				t.Errorf("%s holds %q, want %q", path, got, tt.wantNew)
			}
			if tt.old != "" {
				if got := contents(t, path+tt.old); got != tt.wantOld {
					t.Errorf("%s holds %q, want %q", path+tt.old, got, tt.wantOld)
				}
			}
		})
	}
}

// TestReopenUnderLoad rotates the file twice while 8 goroutines write 500
// lines each, and checks that every line arrives exactly once, whole, in
// one of the three files.
func TestReopenUnderLoad(t *testing.T) {
	const (
		writers  = 8
		perW     = 500
		total    = writers * perW
		rotation = 2 // rotations, at 1/3 and 2/3 of the lines
	)
	// Long lines make a torn write visible; the padding is checked too.
	line := func(w, i int) string {
		return fmt.Sprintf("writer=%d line=%03d %s end\n", w, i, strings.Repeat("x", 200))
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	f := open(t, path)

	var written atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perW {
				s := line(w, i)
				if n, err := f.Write([]byte(s)); err != nil || n != len(s) {
					errs <- fmt.Errorf("writer %d line %d: Write = %d, %v", w, i, n, err)
					return
				}
				written.Add(1)
			}
		})
	}
	// Rotate while the writers run: wait for a third of the lines, move
	// the file away and Reopen, twice. The writers are not paused.
	files := []string{path}
	for r := 1; r <= rotation; r++ {
		for written.Load() < int64(r*total/(rotation+1)) && len(errs) == 0 {
			runtime.Gosched() // the writers are fast; don't sleep past them
		}
		moved := fmt.Sprintf("%s.%d", path, r)
		if err := os.Rename(path, moved); err != nil {
			t.Fatal(err)
		}
		files = append(files, moved)
		if err := f.Reopen(); err != nil {
			t.Fatalf("Reopen %d: %v", r, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	seen := make(map[string]string, total) // line → file it was found in
	for _, name := range files {
		text := contents(t, name)
		if text == "" {
			t.Errorf("%s is empty; want some of the lines written around the rotation", filepath.Base(name))
			continue
		}
		if !strings.HasSuffix(text, "\n") {
			t.Errorf("%s does not end in a newline: its last line is split", filepath.Base(name))
		}
		for _, l := range strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n") {
			if !strings.HasSuffix(l, "\n") {
				l += "\n"
			}
			var w, i int
			if _, err := fmt.Sscanf(l, "writer=%d line=%d ", &w, &i); err != nil || l != line(w, i) {
				t.Errorf("%s: torn or foreign line %.60q", filepath.Base(name), l)
				continue
			}
			if prev, dup := seen[l]; dup {
				t.Errorf("writer %d line %d is in %s and in %s", w, i, prev, filepath.Base(name))
			}
			seen[l] = filepath.Base(name)
		}
	}
	if len(seen) != total {
		t.Errorf("found %d distinct lines, want %d", len(seen), total)
	}
}

func TestReopenFailureKeepsOldFile(t *testing.T) {
	tests := []struct {
		name      string
		asRoot    bool                                  // whether the case works as root
		breakPath func(t *testing.T, dir string) string // breaks the path; returns where the open file now is, or ""
		fix       func(t *testing.T, dir string)        // undoes the breakage
		wantErr   error                                 // matched with errors.Is; nil means any error
	}{
		{
			name:   "directory moved away",
			asRoot: true,
			breakPath: func(t *testing.T, dir string) string {
				// Move the directory rather than delete it, so the still
				// open old file can be read afterwards.
				if err := os.Rename(dir, dir+".gone"); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(dir+".gone", "access.log")
			},
			fix: func(t *testing.T, dir string) {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: fs.ErrNotExist,
		},
		{
			name:   "directory deleted",
			asRoot: true,
			breakPath: func(t *testing.T, dir string) string {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				return "" // the old file is unlinked; only its Write result can be checked
			},
			fix: func(t *testing.T, dir string) {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: fs.ErrNotExist,
		},
		{
			name:   "path taken by a directory",
			asRoot: true,
			breakPath: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "access.log")
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				return path + ".1"
			},
			fix: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "access.log")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:   "directory not writable",
			asRoot: false, // root writes anyway
			breakPath: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "access.log")
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, 0o555); err != nil {
					t.Fatal(err)
				}
				return path + ".1"
			},
			fix: func(t *testing.T, dir string) {
				if err := os.Chmod(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: fs.ErrPermission,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.asRoot && os.Geteuid() == 0 {
				t.Skip("running as root, which may write to any directory")
			}
			dir := filepath.Join(t.TempDir(), "logs")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "access.log")
			f := open(t, path)
			write(t, f, "before\n")

			old := tt.breakPath(t, dir)
			err := f.Reopen()
			if err == nil {
				t.Fatal("Reopen succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Reopen = %v, want an error matching %v", err, tt.wantErr)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != path || !strings.HasPrefix(err.Error(), "logfile: reopen: ") {
				t.Errorf("Reopen = %q, want a logfile: reopen: error naming %s", err, path)
			}
			write(t, f, "still here\n")
			if old != "" {
				if got, want := contents(t, old), "before\nstill here\n"; got != want {
					t.Errorf("old file holds %q, want %q", got, want)
				}
			}

			// Once the cause is gone, Reopen works again.
			tt.fix(t, dir)
			if err := f.Reopen(); err != nil {
				t.Fatalf("Reopen after the fix: %v", err)
			}
			write(t, f, "after\n")
			if got, want := contents(t, path), "after\n"; got != want {
				t.Errorf("%s holds %q, want %q", path, got, want)
			}
		})
	}
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := logfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "one\n")
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	write(t, f, "two\n")
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := contents(t, path), "one\ntwo\n"; got != want {
		t.Errorf("file holds %q, want %q", got, want)
	}

	after := []struct {
		name string
		call func() error
	}{
		{"Write", func() error { _, err := f.Write([]byte("three\n")); return err }},
		{"Reopen", f.Reopen},
		{"Close", f.Close},
	}
	for _, tt := range after {
		t.Run(tt.name+" after Close", func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("%s = %v, want an error matching os.ErrClosed", tt.name, err)
			}
		})
	}
	if got, want := contents(t, path), "one\ntwo\n"; got != want {
		t.Errorf("after Close the file holds %q, want %q", got, want)
	}
}
