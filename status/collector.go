package status

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Label names of the collector's metrics.
const (
	labelListener  = "listener"
	labelAddr      = "addr"
	labelSite      = "site"
	labelRoute     = "route"
	labelUpstream  = "upstream"
	labelDirection = "direction"
)

// collector exports one Snapshot per scrape. See NewCollector.
type collector struct {
	snapshot func() Snapshot
	d        descs
}

// descs are the collector's metric descriptions.
type descs struct {
	buildInfo, draining, reloadGeneration, reloadAttempts, reloadLastOK *prometheus.Desc

	listenerConns, listenerConnsTotal, listenerBytes              *prometheus.Desc
	listenerCap, listenerPaused, listenerPauses, listenerFDErrors *prometheus.Desc
	budgetLimit, budgetOpen                                       *prometheus.Desc

	routeConns, routeConnsTotal, routeRequests, routeStreams, routeHandshakesFailed,
	routeMessages, routeBytes, routeSendFail *prometheus.Desc

	upstreamUp, upstreamFails, upstreamConns, upstreamConnsTotal, upstreamFailures *prometheus.Desc

	gatewayClients, gatewayUIDs, gatewayGroups, gatewayConnsTotal, gatewayMessages,
	gatewaySendFail, gatewayHeartbeatClosed, gatewayPushCalls, gatewayPushFailed, gatewayPushUnauth *prometheus.Desc
	gwWorkers, gwEvents, gwCommands, gwBadPackets *prometheus.Desc
}

// NewCollector returns a Prometheus collector that calls snapshot once
// per scrape and exports what it returns as metrics named wssgate_*:
//
//	wssgate_build_info{version,goversion}                       gauge, always 1
//	wssgate_draining                                            gauge, 1 while draining
//	wssgate_reload_generation                                   gauge, successful reloads
//	wssgate_reload_attempts_total                               counter
//	wssgate_reload_last_ok                                      gauge, 0 after a failed reload
//	wssgate_listener_connections{listener,addr}                 gauge
//	wssgate_listener_connections_total{listener,addr}           counter
//	wssgate_listener_bytes_total{listener,addr,direction}       counter, direction "in" or "out"
//	wssgate_route_connections{site,route}                       gauge
//	wssgate_route_connections_total{site,route}                 counter
//	wssgate_route_requests_total{site,route}                    counter
//	wssgate_route_streams_total{site,route}                     counter
//	wssgate_route_handshakes_failed_total{site,route}           counter
//	wssgate_route_messages_total{site,route,direction}          counter
//	wssgate_route_bytes_total{site,route,direction}             counter
//	wssgate_route_send_fail_total{site,route}                   counter
//	wssgate_upstream_up{site,route,upstream}                    gauge, 1 healthy, 0 not
//	wssgate_upstream_consecutive_failures{site,route,upstream}  gauge
//	wssgate_upstream_connections{site,route,upstream}           gauge
//	wssgate_upstream_connections_total{site,route,upstream}     counter
//	wssgate_upstream_failures_total{site,route,upstream}        counter
//	wssgate_gateway_clients, _uids, _groups                     gauges
//	wssgate_gateway_connections_total                           counter
//	wssgate_gateway_messages_total{direction}                   counter
//	wssgate_gateway_send_fail_total                             counter
//	wssgate_gateway_heartbeat_closed_total                      counter
//	wssgate_gateway_push_calls_total                            counter
//	wssgate_gateway_push_failed_total                           counter
//
// The route label is the route's path and the upstream label its URL.
// The gateway metrics are absent while Snapshot.Gateway is nil. Rates
// and process figures are left to Prometheus and to the Go and process
// collectors. A row whose labels are not valid UTF-8 is reported as a
// scrape error for that metric rather than a panic. snapshot must not
// be nil and must be safe for concurrent use.
func NewCollector(snapshot func() Snapshot) prometheus.Collector {
	if snapshot == nil {
		panic("status: NewCollector: snapshot is nil")
	}
	listener := []string{labelListener, labelAddr}
	route := []string{labelSite, labelRoute}
	upstream := []string{labelSite, labelRoute, labelUpstream}
	with := func(labels []string, more ...string) []string {
		return append(append([]string(nil), labels...), more...)
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("wssgate_"+name, help, labels, nil)
	}
	return &collector{snapshot: snapshot, d: descs{
		buildInfo:        desc("build_info", "Always 1; the labels name wssgate's version and the Go version it was built with.", "version", "goversion"),
		draining:         desc("draining", "1 while the process drains: it accepts no new work and waits for connections to end."),
		reloadGeneration: desc("reload_generation", "Successful configuration reloads since the process started."),
		reloadAttempts:   desc("reload_attempts_total", "Configuration reloads attempted, successful or not."),
		reloadLastOK:     desc("reload_last_ok", "0 when the last configuration reload failed, else 1."),

		listenerConns:      desc("listener_connections", "Connections open now on the listener.", listener...),
		listenerConnsTotal: desc("listener_connections_total", "Connections accepted by the listener.", listener...),
		listenerBytes:      desc("listener_bytes_total", "Bytes read from (in) and written to (out) the listener's connections.", with(listener, labelDirection)...),
		listenerCap:        desc("listener_connection_cap", "Connections the listener may hold open; 0 when only the budget bounds it.", listener...),
		listenerPaused:     desc("listener_paused", "1 while the listener does not accept: at its cap or out of budget.", listener...),
		listenerPauses:     desc("listener_pauses_total", "Times the listener stopped accepting at its cap or for the budget.", listener...),
		listenerFDErrors:   desc("listener_fd_errors_total", "Accepts that failed for want of file descriptors (EMFILE, ENFILE).", listener...),
		budgetLimit:        desc("connection_budget", "Connections all listeners may hold open at once; 0 = no budget."),
		budgetOpen:         desc("connection_budget_open", "Connections all listeners hold open now."),

		routeConns:            desc("route_connections", "Requests and WebSocket streams the route is handling now.", route...),
		routeConnsTotal:       desc("route_connections_total", "Requests and WebSocket streams the route has begun, refused ones included.", route...),
		routeRequests:         desc("route_requests_total", "Plain HTTP requests to the route.", route...),
		routeStreams:          desc("route_streams_total", "WebSocket streams established through the route.", route...),
		routeHandshakesFailed: desc("route_handshakes_failed_total", "WebSocket upgrades on the route that did not become streams.", route...),
		routeMessages:         desc("route_messages_total", "WebSocket messages from (in) and to (out) the route's clients.", with(route, labelDirection)...),
		routeBytes:            desc("route_bytes_total", "Bytes from (in) and to (out) the route's clients.", with(route, labelDirection)...),
		routeSendFail:         desc("route_send_fail_total", "Streams on the route ended because a side stopped reading.", route...),

		upstreamUp:         desc("upstream_up", "1 while the upstream is healthy and in rotation, else 0.", upstream...),
		upstreamFails:      desc("upstream_consecutive_failures", "The upstream's consecutive failures now.", upstream...),
		upstreamConns:      desc("upstream_connections", "Requests and streams to the upstream now.", upstream...),
		upstreamConnsTotal: desc("upstream_connections_total", "Requests and streams sent to the upstream.", upstream...),
		upstreamFailures:   desc("upstream_failures_total", "Requests and streams to the upstream that failed to connect or answer.", upstream...),

		gatewayClients:         desc("gateway_clients", "Clients connected to the gateway now."),
		gatewayUIDs:            desc("gateway_uids", "Distinct uids bound now."),
		gatewayGroups:          desc("gateway_groups", "Groups with at least one member now."),
		gatewayConnsTotal:      desc("gateway_connections_total", "Clients the gateway has accepted."),
		gatewayMessages:        desc("gateway_messages_total", "Messages from (in) and to (out) the gateway's clients.", labelDirection),
		gatewaySendFail:        desc("gateway_send_fail_total", "Gateway clients dropped as too slow."),
		gatewayHeartbeatClosed: desc("gateway_heartbeat_closed_total", "Gateway clients closed for silence."),
		gatewayPushCalls:       desc("gateway_push_calls_total", "Push API calls, each call of a batch counted."),
		gatewayPushFailed:      desc("gateway_push_failed_total", "Push API calls answered with an error."),
		gatewayPushUnauth:      desc("gateway_push_unauthorized_total", "Push API requests refused for a missing or wrong token."),

		gwWorkers:    desc("gatewayworker_workers", "BusinessWorker connections to the inner listener now."),
		gwEvents:     desc("gatewayworker_events_total", "Client events sent to BusinessWorkers (sent) or dropped for want of one (dropped).", "result"),
		gwCommands:   desc("gatewayworker_commands_total", "Commands run for BusinessWorkers and GatewayClient."),
		gwBadPackets: desc("gatewayworker_bad_packets_total", "Inner connections closed for a malformed packet."),
	}}
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.d.buildInfo, c.d.draining, c.d.reloadGeneration, c.d.reloadAttempts, c.d.reloadLastOK,
		c.d.listenerConns, c.d.listenerConnsTotal, c.d.listenerBytes,
		c.d.listenerCap, c.d.listenerPaused, c.d.listenerPauses, c.d.listenerFDErrors, c.d.budgetLimit, c.d.budgetOpen,
		c.d.routeConns, c.d.routeConnsTotal, c.d.routeRequests, c.d.routeStreams,
		c.d.routeHandshakesFailed, c.d.routeMessages, c.d.routeBytes, c.d.routeSendFail,
		c.d.upstreamUp, c.d.upstreamFails, c.d.upstreamConns, c.d.upstreamConnsTotal, c.d.upstreamFailures,
		c.d.gatewayClients, c.d.gatewayUIDs, c.d.gatewayGroups, c.d.gatewayConnsTotal,
		c.d.gatewayMessages, c.d.gatewaySendFail, c.d.gatewayHeartbeatClosed,
		c.d.gatewayPushCalls, c.d.gatewayPushFailed, c.d.gatewayPushUnauth,
		c.d.gwWorkers, c.d.gwEvents, c.d.gwCommands, c.d.gwBadPackets,
	} {
		ch <- d
	}
}

// Collect takes one snapshot and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	d := &c.d
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- constMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v int64, labels ...string) {
		ch <- constMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	in, out := "in", "out"

	gauge(d.buildInfo, 1, s.Process.Version, s.Process.GoVersion)
	gauge(d.draining, boolValue(s.Process.Draining))
	gauge(d.reloadGeneration, float64(s.Reload.Generation))
	counter(d.reloadAttempts, int64(s.Reload.Attempts))
	gauge(d.reloadLastOK, boolValue(!s.Reload.Failed))

	for _, l := range s.Listeners {
		gauge(d.listenerConns, float64(l.Conns), l.Name, l.Addr)
		counter(d.listenerConnsTotal, l.Total, l.Name, l.Addr)
		counter(d.listenerBytes, l.BytesIn, l.Name, l.Addr, in)
		counter(d.listenerBytes, l.BytesOut, l.Name, l.Addr, out)
		gauge(d.listenerCap, float64(l.Cap), l.Name, l.Addr)
		gauge(d.listenerPaused, boolValue(l.Paused), l.Name, l.Addr)
		counter(d.listenerPauses, l.Pauses, l.Name, l.Addr)
		counter(d.listenerFDErrors, l.FDErrors, l.Name, l.Addr)
	}
	gauge(d.budgetLimit, float64(s.Budget.Limit))
	gauge(d.budgetOpen, float64(s.Budget.Open))
	for _, r := range s.Routes {
		gauge(d.routeConns, float64(r.Conns), r.Site, r.Path)
		counter(d.routeConnsTotal, r.Total, r.Site, r.Path)
		counter(d.routeRequests, r.Requests, r.Site, r.Path)
		counter(d.routeStreams, r.Streams, r.Site, r.Path)
		counter(d.routeHandshakesFailed, r.HandshakesFailed, r.Site, r.Path)
		counter(d.routeMessages, r.MessagesIn, r.Site, r.Path, in)
		counter(d.routeMessages, r.MessagesOut, r.Site, r.Path, out)
		counter(d.routeBytes, r.BytesIn, r.Site, r.Path, in)
		counter(d.routeBytes, r.BytesOut, r.Site, r.Path, out)
		counter(d.routeSendFail, r.SendFail, r.Site, r.Path)
	}
	for _, u := range s.Upstreams {
		gauge(d.upstreamUp, boolValue(u.Healthy), u.Site, u.Route, u.URL)
		gauge(d.upstreamFails, float64(u.Fails), u.Site, u.Route, u.URL)
		gauge(d.upstreamConns, float64(u.Conns), u.Site, u.Route, u.URL)
		counter(d.upstreamConnsTotal, u.Total, u.Site, u.Route, u.URL)
		counter(d.upstreamFailures, u.Failed, u.Site, u.Route, u.URL)
	}
	if g := s.Gateway; g != nil {
		gauge(d.gatewayClients, float64(g.Clients))
		gauge(d.gatewayUIDs, float64(g.UIDs))
		gauge(d.gatewayGroups, float64(g.Groups))
		counter(d.gatewayConnsTotal, g.ConnectionsTotal)
		counter(d.gatewayMessages, g.MessagesIn, in)
		counter(d.gatewayMessages, g.MessagesOut, out)
		counter(d.gatewaySendFail, g.SendFail)
		counter(d.gatewayHeartbeatClosed, g.HeartbeatClosed)
		counter(d.gatewayPushCalls, g.PushCalls)
		counter(d.gatewayPushFailed, g.PushFailed)
		counter(d.gatewayPushUnauth, g.PushUnauthorized)
		if w := g.GatewayWorker; w != nil {
			gauge(d.gwWorkers, float64(w.Workers))
			counter(d.gwEvents, w.EventsSent, "sent")
			counter(d.gwEvents, w.EventsDropped, "dropped")
			counter(d.gwCommands, w.Commands)
			counter(d.gwBadPackets, w.BadPackets)
		}
	}
}

// constMetric is prometheus.MustNewConstMetric without the panic: a
// label value that is not valid UTF-8 (a site name from a hand-edited
// file) fails that metric's scrape instead of the process.
func constMetric(desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(desc, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	return m
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
