// Package procfs parses the Linux /proc files wssgate reads about
// processes: the status command's own figures and the load tool's
// measurements of wssgate and nginx.
package procfs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// VmRSS returns the VmRSS line of /proc/PID/status in bytes.
func VmRSS(status string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc: status: VmRSS %q: want \"N kB\"", strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc: status: VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("proc: status: no VmRSS (a kernel thread or a zombie)")
}
