package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// A /proc/PID/stat line whose command name holds a space and a ')', as
// a process may name itself.
const sampleStat = "4242 (nginx: w) rk) S 4241 4241 4241 0 -1 4194624 2960 0 0 0 1234 567 0 0 20 0 1 0 98765 21381120 1712 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"

const sampleStatus = `Name:	nginx
Umask:	0022
State:	S (sleeping)
Pid:	4242
PPid:	4241
VmPeak:	   21880 kB
VmSize:	   20880 kB
VmHWM:	    7000 kB
VmRSS:	    6848 kB
RssAnon:	    1200 kB
Threads:	1
`

func TestParseStat(t *testing.T) {
	st, err := parseStat(sampleStat)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{PID: 4242, Comm: "nginx: w) rk", PPID: 4241, UTime: 1234, STime: 567, StartTime: 98765}
	if st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	if got, want := st.CPU(), 18010*time.Millisecond; got != want {
		t.Errorf("CPU() = %v, want %v", got, want)
	}
	for _, bad := range []string{
		"",
		"4242 nginx S 1",
		"x (nginx) S 1 2 3",
		"4242 (nginx) S 4241 4241",
		strings.Replace(sampleStat, " 1234 ", " -5 ", 1),
	} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): got no error", bad)
		}
	}
}

func TestParseSchedRuntime(t *testing.T) {
	got, err := parseSchedRuntime("371076020 216074 28\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := 371076020 * time.Nanosecond; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseSchedRuntime(""); err == nil {
		t.Error("empty: got no error")
	}
}

// TestSampleSelf reads this process from the real /proc.
func TestSampleSelf(t *testing.T) {
	u, err := sampleTree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.Procs != 1 || u.RSS <= 0 || u.CPU <= 0 || u.FDs <= 0 {
		t.Errorf("got %+v, want one process with RSS, CPU and descriptors", u)
	}
}
