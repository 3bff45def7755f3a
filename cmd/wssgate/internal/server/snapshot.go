package server

import (
	"slices"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/status"
)

// Snapshot is the server's state for status and metrics.
func (s *Server) Snapshot() status.Snapshot {
	now := time.Now()
	version := s.opts.Version
	if version == "" {
		version = "devel"
	}
	snap := status.Snapshot{Time: now, Process: status.ReadProcess(version, s.started, now)}
	snap.Process.Draining = s.draining.Load()

	r := &s.reloads
	r.mu.Lock()
	snap.Reload = status.Reload{Generation: r.generation, Attempts: r.attempts, Began: r.began, Time: r.time,
		Failed: r.attempts > 0 && !r.ok, Problems: slices.Clone(r.problems)}
	r.mu.Unlock()
	u := &s.handover
	u.mu.Lock()
	snap.Upgrade = status.Upgrade{Attempts: u.attempts, InProgress: u.inProgress, Time: u.time, Error: u.err}
	u.mu.Unlock()

	for _, sock := range s.sockets.List() {
		st := sock.Stats
		snap.Listeners = append(snap.Listeners, status.Listener{Name: sock.Name, Addr: sock.Bound.String(),
			Conns: st.Active, Total: st.Total, BytesIn: st.BytesIn, BytesOut: st.BytesOut,
			Cap: st.Cap, Paused: st.Paused, Pauses: st.Pauses, FDErrors: st.FDErrors})
	}
	snap.Budget.Limit, snap.Budget.Open = s.sockets.Budget()
	slices.SortFunc(snap.Listeners, func(a, b status.Listener) int {
		return config.Listener(a.Name).Order() - config.Listener(b.Name).Order()
	})

	ps := s.proxy.Stats()
	for _, site := range ps.Sites {
		name := site.Hosts[0]
		for _, rt := range site.Routes {
			snap.Routes = append(snap.Routes, status.Route{Site: name, Path: rt.Path, Kind: rt.Kind,
				Conns: rt.Active, Total: rt.Total, Requests: rt.Requests, Streams: rt.Streams,
				HandshakesFailed: rt.HandshakesFailed, BytesIn: rt.BytesIn, BytesOut: rt.BytesOut,
				MessagesIn: rt.MessagesIn, MessagesOut: rt.MessagesOut, SendFail: rt.SendFail})
			for _, up := range rt.Upstreams {
				snap.Upstreams = append(snap.Upstreams, status.Upstream{Site: name, Route: rt.Path, URL: up.URL,
					Healthy: up.Healthy, Fails: up.Fails, Conns: up.Active, Total: up.Total, Failed: up.Failed})
			}
		}
	}

	if g := s.gateway; g != nil {
		hs, api := g.hub.Stats(), g.apiStats()
		snap.Gateway = &status.Gateway{Node: g.node.String(), Clients: hs.Clients, UIDs: hs.UIDs, Groups: hs.Groups,
			ConnectionsTotal: hs.ConnectionsTotal, MessagesIn: hs.MessagesIn, MessagesOut: hs.MessagesOut,
			SendFail: hs.SendFail, HeartbeatClosed: hs.HeartbeatClosed, PushCalls: api.Calls, PushFailed: api.Failed, PushUnauthorized: api.Unauthorized}
		if g.gw != nil {
			snap.Gateway.GatewayWorker = g.gw.status()
		}
	}
	return snap
}
