//go:build unix

package config

import "syscall"

// OpenFileLimit returns the process's soft limit on open files
// (RLIMIT_NOFILE), for [Config.ApplyOpenFileLimit]; 0 when it cannot be
// read or, outside Unix, is not known.
func OpenFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur) // int64 on FreeBSD and DragonFly, whose infinity is still positive
}
