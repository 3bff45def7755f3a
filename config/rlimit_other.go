//go:build !unix

package config

// OpenFileLimit returns 0: the limit on open files is not known on this
// system.
func OpenFileLimit() uint64 { return 0 }
