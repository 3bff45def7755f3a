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

// ConnectionBudget is how many connections all listeners together may
// hold open at once, from accept to close, TLS handshakes included: the
// open-file limit less the reserve and less one descriptor for each
// request or stream max_connections lets the edge proxy to an upstream.
// Call it after [Config.ApplyOpenFileLimit]. It returns 0, no budget,
// when openFiles is unknown (0) or too large to matter, and at least
// 32 otherwise.
func (c *Config) ConnectionBudget(openFiles uint64) int {
	if openFiles == 0 || openFiles > maxConnectionsCap {
		return 0
	}
	b := int64(openFiles) - openFilesReserve - int64(max(c.Limits.MaxConnections, 0))
	return int(max(b, 32))
}

// ListenerCap is the cap of the listener l within budget: the one
// limits.listener_connections gives (0: none of its own), else its
// default (see [Limits.ListenerConnections]), at most a quarter of a
// known budget.
func (c *Config) ListenerCap(l Listener, budget int) int {
	if v, ok := c.Limits.ListenerConnections[string(l)]; ok {
		return v
	}
	var def int
	switch l {
	case ListenerHTTP, ListenerGatewayText, ListenerGWInner:
		def = 1024
	case ListenerPushAPI, ListenerGWRegister:
		def = 256
	case ListenerAdmin:
		def = 32
	default:
		return 0
	}
	if budget > 0 {
		def = min(def, max(budget/4, 1))
	}
	return def
}
