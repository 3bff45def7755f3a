package status

import (
	"encoding/json"
	"fmt"
	"time"
)

// Snapshot is the state of one wssgate process at one moment. Counters
// (fields named Total, Requests, MessagesIn, ...) only grow while the
// process runs; fields named Conns, Clients, UIDs and Groups are current
// values. The zero Snapshot is valid and means "nothing known".
type Snapshot struct {
	// Time is when the snapshot was taken. The Sampler measures
	// intervals with it, so it must be set for rates; the admin server
	// sets it when the snapshot function leaves it zero.
	Time time.Time `json:"time"`
	// QPSInterval is the length of the interval the QPS fields were
	// measured over; zero means they were not measured (yet) and are
	// all zero.
	QPSInterval Duration `json:"qps_interval"`

	// Process is the global block: versions, uptime, memory, fds.
	Process Process `json:"process"`
	// Reload is the outcome of configuration reloads (SIGHUP).
	Reload Reload `json:"reload"`
	// Upgrade is the outcome of the binary upgrades this process
	// started (SIGUSR2).
	Upgrade Upgrade `json:"upgrade"`

	// Listeners has one row per listening socket; nil means none.
	Listeners []Listener `json:"listeners"`
	// Budget is the connection budget all listeners share.
	Budget Budget `json:"budget"`
	// Routes has one row per route of each site; nil means none.
	Routes []Route `json:"routes"`
	// Upstreams has one row per upstream of each route; nil means none.
	Upstreams []Upstream `json:"upstreams"`
	// Gateway is the bundled gateway's row; nil when it is off.
	Gateway *Gateway `json:"gateway"`
}

// Process is the global block of a Snapshot: what the process is and
// what it uses. [ReadProcess] fills everything but Draining.
type Process struct {
	PID       int       `json:"pid"`
	Version   string    `json:"version"`    // wssgate's version; "" if unknown
	GoVersion string    `json:"go_version"` // runtime.Version()
	Start     time.Time `json:"start"`      // when the process started; zero if unknown
	Uptime    Duration  `json:"uptime"`     // time since Start, at the snapshot's time

	// LoadAvg is the system's 1, 5 and 15 minute load averages
	// (/proc/loadavg); zeros where unknown.
	LoadAvg [3]float64 `json:"load_avg"`
	// RSSBytes is the resident set size (VmRSS); 0 where unknown.
	RSSBytes uint64 `json:"rss_bytes"`
	// HeapBytes is the Go heap occupied by live and not yet swept
	// objects (runtime.MemStats.HeapAlloc).
	HeapBytes  uint64 `json:"heap_bytes"`
	Goroutines int    `json:"goroutines"`
	// OpenFDs is the number of open file descriptors; 0 where unknown.
	OpenFDs int `json:"open_fds"`
	// MaxFDs is the soft RLIMIT_NOFILE; 0 where unknown.
	MaxFDs uint64 `json:"max_fds"`
	// Draining reports that the process has stopped accepting new work
	// (after a graceful upgrade handed its listeners over, or during
	// shutdown) and is waiting for connections to end.
	Draining bool `json:"draining"`
}

// Reload is the outcome of configuration reloads. A client that asks
// for a reload (`wssgate reload` sending SIGHUP) notes Attempts first
// and polls until it grows; then Failed and Problems say how it went.
// The zero Reload means no reload was attempted.
type Reload struct {
	// Generation counts successful reloads since the process started.
	Generation int `json:"generation"`
	// Attempts counts reloads attempted, successful or not.
	Attempts int `json:"attempts"`
	// Began is when the last attempt began, Time when it ended; zero
	// if none was made. A client that sent SIGHUP at t waits for an
	// attempt that began after t.
	Began time.Time `json:"began"`
	Time  time.Time `json:"time"`
	// Failed reports that the last attempt failed and the previous
	// configuration is still serving. False when none was made.
	Failed bool `json:"failed"`
	// Problems lists why the last attempt failed, one problem per
	// entry (as `wssgate validate` prints them); nil after a success.
	Problems []string `json:"problems"`
}

// Upgrade is the outcome of the binary upgrades a process started. A
// successful one ends the process (it drains and exits), so a process
// that answers after an attempt either failed it or is draining. The
// zero Upgrade means none was attempted.
type Upgrade struct {
	// Attempts counts upgrades started.
	Attempts int `json:"attempts"`
	// InProgress reports that the new process has been started and
	// has not said it is ready yet.
	InProgress bool `json:"in_progress"`
	// Time is when the last attempt ended; zero if none ended.
	Time time.Time `json:"time"`
	// Error says why the last attempt failed; "" if it did not.
	Error string `json:"error"`
}

// Listener is one listening socket. Name is what it serves: "https",
// "http", "admin", "gateway_text", "gateway_websocket" or "push_api".
type Listener struct {
	Name     string  `json:"name"`
	Addr     string  `json:"addr"`      // the bound address, as configured or as bound
	Conns    int64   `json:"conns"`     // connections open now
	Total    int64   `json:"total"`     // connections accepted since start
	BytesIn  int64   `json:"bytes_in"`  // bytes read from clients, after TLS
	BytesOut int64   `json:"bytes_out"` // bytes written to clients, before TLS
	QPS      float64 `json:"qps"`       // connections accepted per second (see Sampler)
	Cap      int64   `json:"cap"`       // connections it may hold open; 0 = only the budget bounds it
	Paused   bool    `json:"paused"`    // not accepting now: at its cap or out of budget
	Pauses   int64   `json:"pauses"`    // times it stopped accepting so
	FDErrors int64   `json:"fd_errors"` // accepts that failed for want of file descriptors
}

// Budget is the process's connection budget: how many connections all
// listeners may hold open at once (0: none, the open-file limit is not
// known), and how many they hold now.
type Budget struct {
	Limit int64 `json:"limit"`
	Open  int64 `json:"open"`
}

// Route is one route of one site: a path prefix under the site's hosts.
type Route struct {
	Site string `json:"site"` // the site's first host name
	Path string `json:"path"` // the route's path prefix
	// Kind is what the route does: "proxy" (upstreams), "gateway" (the
	// bundled gateway), "static" (files), "redirect", ...; the proxy's
	// own word for it.
	Kind string `json:"kind"`

	Conns int64 `json:"conns"` // requests and WebSocket streams being handled now
	Total int64 `json:"total"` // requests and streams begun since start, refused ones included

	Requests int64 `json:"requests"` // plain HTTP requests since start
	Streams  int64 `json:"streams"`  // WebSocket streams established since start
	// HandshakesFailed counts WebSocket upgrades that did not become
	// streams: refused by the limits, bad client handshakes, upstreams
	// unreachable or refusing.
	HandshakesFailed int64 `json:"handshakes_failed"`

	BytesIn     int64 `json:"bytes_in"`     // from clients: request bodies and stream payloads
	BytesOut    int64 `json:"bytes_out"`    // to clients: response bodies and stream payloads
	MessagesIn  int64 `json:"messages_in"`  // WebSocket messages from clients
	MessagesOut int64 `json:"messages_out"` // WebSocket messages to clients
	// SendFail counts streams ended because a client or an upstream
	// stopped reading (send_timeout).
	SendFail int64 `json:"send_fail"`

	QPS float64 `json:"qps"` // (requests + messages in + messages out) per second
}

// Upstream is one backend of one route.
type Upstream struct {
	Site  string `json:"site"`  // as Route.Site
	Route string `json:"route"` // as Route.Path
	URL   string `json:"url"`
	// Healthy reports whether the upstream is in rotation.
	Healthy bool `json:"healthy"`
	// Fails is its consecutive failures now (dials and health checks);
	// 0 when healthy and reachable.
	Fails int `json:"fails"`

	Conns  int64   `json:"conns"`  // requests and streams to it now
	Total  int64   `json:"total"`  // requests and streams sent to it since start
	Failed int64   `json:"failed"` // of those, how many failed to connect or answer
	QPS    float64 `json:"qps"`    // Total per second
}

// Gateway is the bundled gateway's row: its hub and its push API.
type Gateway struct {
	Node string `json:"node"` // the address written into client ids

	Clients int `json:"clients"` // connected now
	UIDs    int `json:"uids"`    // distinct uids bound now
	Groups  int `json:"groups"`  // groups with at least one member now

	ConnectionsTotal int64 `json:"connections_total"` // clients accepted since start
	MessagesIn       int64 `json:"messages_in"`       // from clients
	MessagesOut      int64 `json:"messages_out"`      // to clients
	SendFail         int64 `json:"send_fail"`         // clients dropped as too slow
	HeartbeatClosed  int64 `json:"heartbeat_closed"`  // clients closed for silence
	PushCalls        int64 `json:"push_calls"`        // push API calls, each call of a batch counted
	PushFailed       int64 `json:"push_failed"`       // push API calls answered with an error
	PushUnauthorized int64 `json:"push_unauthorized"` // push API requests refused for a missing or wrong token

	QPS float64 `json:"qps"` // (messages in + messages out + push calls) per second

	// GatewayWorker is the state of the GatewayWorker protocols; nil
	// when gateway.gatewayworker is off.
	GatewayWorker *GatewayWorker `json:"gatewayworker,omitempty"`
}

// GatewayWorker is what the GatewayWorker protocols are doing: the
// BusinessWorkers connected to the inner listener and the events and
// commands that passed.
type GatewayWorker struct {
	InnerAddr     string `json:"inner_addr"`     // the inner address announced and in client ids
	Workers       int    `json:"workers"`        // BusinessWorker connections now
	EventsSent    int64  `json:"events_sent"`    // events queued to a BusinessWorker
	EventsDropped int64  `json:"events_dropped"` // events dropped: no BusinessWorker, or its buffer full
	Commands      int64  `json:"commands"`       // commands run for BusinessWorkers and GatewayClient
	BadPackets    int64  `json:"bad_packets"`    // inner connections closed for a malformed packet
}

// Duration is a time.Duration that is written in JSON as Go writes a
// duration ("1h2m3.5s") rather than as nanoseconds. It reads back
// either form.
type Duration time.Duration

// String returns the duration as time.Duration formats it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string such as "10s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// UnmarshalJSON reads a string that time.ParseDuration accepts, or a
// number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var ns int64
		if err := json.Unmarshal(b, &ns); err != nil {
			return fmt.Errorf("status: duration %s: want a string such as \"10s\" or nanoseconds", b)
		}
		*d = Duration(ns)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("status: duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes s with absent lists as [] rather than null, so
// that a reader of `wssgate status -json` can iterate without checks.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	type plain Snapshot // without this method
	p := plain(s)
	if p.Listeners == nil {
		p.Listeners = []Listener{}
	}
	if p.Routes == nil {
		p.Routes = []Route{}
	}
	if p.Upstreams == nil {
		p.Upstreams = []Upstream{}
	}
	if p.Reload.Problems == nil {
		p.Reload.Problems = []string{}
	}
	return json.Marshal(p)
}
