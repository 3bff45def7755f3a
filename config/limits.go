package config

// Descriptors behind limits.max_connections.
const (
	// openFilesReserve is kept apart from client streams: listeners,
	// logs, certificates, upstream pools.
	openFilesReserve = 100
	// unknownLimitConnections is max_connections where the open-file
	// limit is not known.
	unknownLimitConnections = 10000
	// maxConnectionsCap bounds a max_connections worked out from a
	// huge (or unlimited) open-file limit.
	maxConnectionsCap = 1 << 30
)

// ApplyOpenFileLimit fits limits.max_connections to openFiles, the
// process's limit on open files ([OpenFileLimit]; 0 when unknown). Each
// proxied stream holds two descriptors. A MaxConnections of 0 becomes
// (openFiles − 100) / 2, at most 1<<30, or 10000 when openFiles is 0 or
// 200 or less, and the result is nil. A configured MaxConnections that
// needs more descriptors than openFiles allows is kept, and the result is
// a warning, an [*Error] at limits.max_connections: past the limit,
// accepts fail and clients time out instead of getting a 503. It
// returns nil otherwise.
func (c *Config) ApplyOpenFileLimit(openFiles uint64) (warning error) {
	lim := &c.Limits
	if lim.MaxConnections == 0 {
		lim.MaxConnections = unknownLimitConnections
		if openFiles > 2*openFilesReserve {
			lim.MaxConnections = int(min((openFiles-openFilesReserve)/2, maxConnectionsCap))
		}
		return nil
	}
	if lim.MaxConnections < 0 || openFiles == 0 {
		return nil // negative: a Validate problem, not a warning
	}
	if need := 2*uint64(lim.MaxConnections) + openFilesReserve; need > openFiles {
		return c.Errorf("limits.max_connections", "%d needs %d open files, more than the process may have (%d); raise the limit (systemd LimitNOFILE, ulimit -n) or lower max_connections",
			lim.MaxConnections, need, openFiles)
	}
	return nil
}
