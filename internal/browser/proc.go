package browser

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// processesUsing returns the ids of the processes whose command line
// names dir or a path under it. For a browser started by New that is
// every process of it: the browser, its zygotes, renderers and helpers
// (--user-data-dir=dir) and its crash handlers (--database=dir/...).
func processesUsing(dir string) []int {
	want := []byte(dir)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if hasPath(cmdline, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// hasPath reports whether cmdline names the path dir, or a path under
// it, as an argument or as the value of a --flag=. Arguments are
// separated by NULs or, in the command line Chromium's children rewrite
// for themselves, by spaces.
func hasPath(cmdline, dir []byte) bool {
	for rest := cmdline; ; {
		i := bytes.Index(rest, dir)
		if i < 0 {
			return false
		}
		before := i == 0 || rest[i-1] == 0 || rest[i-1] == ' ' || rest[i-1] == '='
		end := i + len(dir)
		after := end == len(rest) || rest[end] == 0 || rest[end] == ' ' || rest[end] == '/'
		if before && after {
			return true
		}
		rest = rest[i+1:]
	}
}

// reap waits up to wait for the processes of the browser with profile dir
// to exit, kills those left (the profile is the test's own, so they are
// this browser's), waits up to wait again and returns the ids still
// there.
func reap(dir string, wait time.Duration) []int {
	if left := waitGone(dir, wait); len(left) == 0 {
		return nil
	}
	for _, pid := range processesUsing(dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return waitGone(dir, wait)
}

// waitGone polls until no live process uses dir, or wait has passed, and
// returns the live ones.
func waitGone(dir string, wait time.Duration) []int {
	deadline := time.Now().Add(wait)
	for {
		// An exited process that waits for its parent (a zombie) has an
		// empty command line, so it counts as gone.
		live := processesUsing(dir)
		if len(live) == 0 || time.Now().After(deadline) {
			return live
		}
		time.Sleep(20 * time.Millisecond)
	}
}
