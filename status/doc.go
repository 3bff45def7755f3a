// Package status is wssgate's picture of itself at one moment: the data
// model behind the `wssgate status` command, the admin listener's
// /status and /metrics, and the `wssgate reload` outcome.
//
// A [Snapshot] holds a global block ([Process], [Reload]) and one row per
// listener ([Listener]), per site route ([Route]), per upstream
// ([Upstream]) and, when the bundled gateway runs, one [Gateway] row.
// The counters in it are totals since the process (or, for the proxy,
// the current route table) started; the caller builds a Snapshot from
// the proxy's, the listeners', the hub's and the push API's own
// statistics, and [ReadProcess] fills the process figures from the
// kernel and the Go runtime.
//
// Rates are not counted anywhere: a [Sampler] is given successive
// snapshots and derives each row's QPS from the growth of its counters
// between the last two, divided by the time between them (see
// [Sampler] for what each row's QPS counts).
//
// [WriteTable] prints a snapshot as an aligned text table in the spirit
// of GatewayWorker's `php start.php status`, and [NewCollector] exports
// one as Prometheus metrics, all named wssgate_*.
//
// The package keeps no global state; a Sampler is safe for concurrent
// use, and everything else works on values.
package status
