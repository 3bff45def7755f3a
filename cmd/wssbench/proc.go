package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wssgate/wssgate/internal/procfs"
)

// procRoot is where the proc filesystem is mounted.
const procRoot = "/proc"

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// Linux fixes it at 100 for user space on every architecture Go supports.
const clockTicks = 100

// procStat holds the fields of /proc/PID/stat that wssbench reads.
type procStat struct {
	PID       int
	Comm      string
	PPID      int
	UTime     uint64 // user CPU, clock ticks, all threads
	STime     uint64 // system CPU, clock ticks, all threads
	StartTime uint64 // start time after boot, clock ticks: with PID, names one process
}

// CPU is the process's user plus system time.
func (s procStat) CPU() time.Duration {
	return time.Duration(s.UTime+s.STime) * (time.Second / clockTicks)
}

// parseStat parses the content of /proc/PID/stat. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStat(s string) (procStat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, errors.New("proc: stat: no (comm)")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return procStat{}, fmt.Errorf("proc: stat: pid: %w", err)
	}
	// f[0] is field 3 (state) in proc(5)'s numbering, so field n is f[n-3].
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("proc: stat: %d fields after comm, want at least 20", len(f))
	}
	st := procStat{PID: pid, Comm: s[open+1 : end]}
	if st.PPID, err = strconv.Atoi(f[4-3]); err != nil {
		return procStat{}, fmt.Errorf("proc: stat: ppid: %w", err)
	}
	for _, u := range []struct {
		field int
		dst   *uint64
	}{{14, &st.UTime}, {15, &st.STime}, {22, &st.StartTime}} {
		if *u.dst, err = strconv.ParseUint(f[u.field-3], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("proc: stat: field %d: %w", u.field, err)
		}
	}
	return st, nil
}

// parseSchedRuntime returns the first field of /proc/PID/task/TID/schedstat:
// the nanoseconds the thread has spent on a CPU.
func parseSchedRuntime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("proc: schedstat: empty")
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc: schedstat: %w", err)
	}
	return time.Duration(ns), nil
}

// readStat reads /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, fmt.Errorf("proc: %w", err)
	}
	return parseStat(string(b))
}

// readRSS reads the resident set size of pid, in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("proc: %w", err)
	}
	return procfs.VmRSS(string(b))
}

// readCPU returns the CPU time pid has used. It sums the nanosecond
// run times in each thread's schedstat, so that a phase of a few
// milliseconds is not rounded away, and falls back to utime+stime from
// stat (10 ms resolution) when schedstat is missing or when it is below
// stat's figure, which happens once threads have exited: stat keeps
// their time, the thread list does not.
func readCPU(pid int) (time.Duration, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	coarse := st.CPU()
	tasks, err := os.ReadDir(filepath.Join(procRoot, strconv.Itoa(pid), "task"))
	if err != nil {
		return coarse, nil
	}
	var fine time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "task", t.Name(), "schedstat"))
		if err != nil {
			return coarse, nil // no schedstat, or the thread just exited
		}
		d, err := parseSchedRuntime(string(b))
		if err != nil {
			return coarse, nil
		}
		fine += d
	}
	// utime and stime are each truncated to whole ticks: the precise sum
	// may fall short of their total by up to two ticks and still be right.
	if fine+2*time.Second/clockTicks < coarse {
		return coarse, nil
	}
	return fine, nil
}

// countFDs returns how many file descriptors pid has open.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir(filepath.Join(procRoot, strconv.Itoa(pid), "fd"))
	if err != nil {
		return 0, fmt.Errorf("proc: %w", err)
	}
	return len(ents), nil
}

// processTree returns root and all its descendants, found by scanning
// every process's parent in /proc. Processes that vanish during the
// scan are skipped.
func processTree(root int) ([]procStat, error) {
	rootStat, err := readStat(root)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	children := make(map[int][]procStat)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		children[st.PPID] = append(children[st.PPID], st)
	}
	tree := []procStat{rootStat}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i].PID]...)
	}
	return tree, nil
}

// usage is a measurement of a process tree at one moment.
type usage struct {
	Procs int           // processes in the tree
	RSS   int64         // summed VmRSS, bytes
	CPU   time.Duration // summed CPU time
	FDs   int           // summed open file descriptors
}

// sampleTree measures root and its descendants (nginx's master and
// workers; wssgate alone).
func sampleTree(root int) (usage, error) {
	tree, err := processTree(root)
	if err != nil {
		return usage{}, err
	}
	var u usage
	for _, p := range tree {
		rss, err := readRSS(p.PID)
		if err != nil {
			return usage{}, fmt.Errorf("pid %d (%s): %w", p.PID, p.Comm, err)
		}
		cpu, err := readCPU(p.PID)
		if err != nil {
			return usage{}, fmt.Errorf("pid %d (%s): %w", p.PID, p.Comm, err)
		}
		fds, err := countFDs(p.PID)
		if err != nil {
			return usage{}, fmt.Errorf("pid %d (%s): %w", p.PID, p.Comm, err)
		}
		u.Procs++
		u.RSS += rss
		u.CPU += cpu
		u.FDs += fds
	}
	return u, nil
}
