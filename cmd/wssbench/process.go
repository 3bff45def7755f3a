package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long a child gets after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// readyTimeout bounds how long a child may take to say it is serving.
const readyTimeout = 30 * time.Second

// child is a process wssbench started: the backend, wssgate or nginx's
// master. Its stderr (and stdout after the first line) go to a log file
// in the run's temporary directory, which errors quote.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has been waited for
	waitErr error         // the result of Wait, once done is closed
}

// startChild starts cmd with its output in logPath. When ready is not
// nil it reads stdout line by line, within readyTimeout and ctx, until
// ready reports that the lines so far announce a serving process, and
// returns them; a process that exits before is an error that quotes its
// log. The child gets SIGTERM if wssbench dies first.
func startChild(ctx context.Context, name string, cmd *exec.Cmd, logPath string, ready func(lines []string) bool) (*child, []string, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: log: %w", name, err)
	}
	defer logf.Close() // the child holds its own copy
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var stdout io.ReadCloser
	if ready != nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("%s: start %s: %w", name, cmd.Path, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	announced := make(chan []string, 1)
	go func() {
		defer close(c.done)
		if stdout != nil {
			// Every read from the pipe must end before Wait.
			sc := bufio.NewScanner(stdout)
			var lines []string
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if ready(lines) {
					announced <- lines
					break
				}
			}
			_, _ = io.Copy(io.Discard, stdout)
		}
		c.waitErr = cmd.Wait()
	}()
	if ready == nil {
		return c, nil, nil
	}
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case lines := <-announced:
		return c, lines, nil
	case <-c.done:
		select {
		case lines := <-announced: // it announced itself, then exited
			return c, lines, nil
		default:
		}
		return nil, nil, fmt.Errorf("%s exited before it was ready (%v)%s", name, c.waitErr, c.logTail())
	case <-timer.C:
		err = fmt.Errorf("%s: not ready after %v%s", name, readyTimeout, c.logTail())
	case <-ctx.Done():
		err = fmt.Errorf("%s: %w", name, context.Cause(ctx))
	}
	_ = c.stop()
	return nil, nil, err
}

// firstLine is a ready function for startChild: the first line on
// stdout announces the process.
func firstLine(lines []string) bool { return len(lines) > 0 }

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop ends the child: SIGTERM, then SIGKILL after stopTimeout. Its
// descendants (nginx's workers) are recorded first, and any that outlive
// it are killed too, each by the PID and start time recorded, so that a
// reused PID is never hit. Calling stop again is harmless.
func (c *child) stop() error {
	if c.exited() {
		return nil
	}
	var desc []procStat
	if tree, err := processTree(c.pid()); err == nil {
		desc = tree[1:]
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-c.done:
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.done
		err = fmt.Errorf("%s: did not stop within %v of SIGTERM; killed", c.name, stopTimeout)
	}
	deadline := time.Now().Add(stopTimeout)
	for _, d := range desc {
		for {
			now, serr := readStat(d.PID)
			if serr != nil || now.StartTime != d.StartTime {
				break // gone (or the PID now names another process)
			}
			if time.Now().After(deadline) {
				if p, ferr := os.FindProcess(d.PID); ferr == nil {
					_ = p.Signal(syscall.SIGKILL)
				}
				err = errors.Join(err, fmt.Errorf("%s: pid %d (%s) outlived its parent; killed", c.name, d.PID, d.Comm))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return err
}

// logTail returns the end of the child's log, prefixed for an error
// message, or "" when the log is empty.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	const limit = 2000
	s := strings.TrimSpace(string(b))
	if len(s) > limit {
		s = "..." + s[len(s)-limit:]
	}
	return ":\n" + s
}
