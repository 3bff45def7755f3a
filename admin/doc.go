// Package admin is wssgate's admin HTTP listener and its client.
//
// A [Server] is an http.Handler answering GET and HEAD:
//
//	/status          the current status.Snapshot as JSON, QPS filled from the last sample interval
//	/metrics         Prometheus text: the wssgate_* metrics of status.NewCollector, go_* and process_*
//	/healthz         200 "ok" while the process serves
//	/readyz          200 "ready" while Options.Ready says so, else 503 "not ready"
//	/debug/pprof/    net/http/pprof, only with Options.Pprof (404 otherwise)
//
// Any other method is answered 405 and any other path 404. With a
// token, every request (404s included) must carry
// "Authorization: Bearer <token>" or is answered 401 with
// "WWW-Authenticate: Bearer". The token is compared with the configured
// one in constant time, on SHA-256 digests, so that neither its content
// nor its length leaks through timing.
//
// Without a token the server must listen on a loopback address only:
// [CheckBind] says whether an address is acceptable before it is bound,
// and [Server.Serve] refuses a listener that is not. The default address
// is [DefaultAddr], 127.0.0.1:9180.
//
// Rates are sampled on a goroutine of the caller's: [Server.Run] takes a
// snapshot every Options.SampleInterval (10 s by default) and keeps the
// QPS of the last interval, which every /status answer reports next to
// the counters of the moment. [Server.Serve] runs both the HTTP server
// and the sampler until its context ends.
//
// [Fetch] is the client side, for `wssgate status`: it GETs /status and
// turns the usual failures into errors a person can act on.
//
// The package imports net/http/pprof, whose init registers its handlers
// on http.DefaultServeMux; wssgate never serves that mux, and a Server
// mounts the same handlers on its own mux only when Options.Pprof is set.
package admin
