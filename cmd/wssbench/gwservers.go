package main

// This file is one concern: the servers the gateway benchmark measures
// (the hub host and the bare-write floor) and how each is started.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/wsframe"
)

// The three servers of the gateway benchmark:
//
//   - wssgate, the binary, configured with gateway.websocket_listen,
//     text_listen, the push API, the admin listener and an edge TLS route
//     with gateway: true, every listener on a free loopback port;
//   - the hub host ("wssbench gateway-hub", hidden): the gateway package
//     serving a plain ws listener with an in-process Go Handler, as a Go
//     program embedding the hub does; a message "b ..." is sent to every
//     client with SendToAll, any other is echoed to its sender;
//   - the floor ("wssbench gateway-floor", hidden): no hub at all; on a
//     trigger it writes the same frame to every socket in a loop, one
//     write(2) each, and it echoes frame by frame.
//
// Each runs as a process of its own, pinned to CPU 1 when there are two
// or more, with GOMAXPROCS=1.

// gwServer is a running benchmark server and its listeners ("" when it
// has none of that kind).
type gwServer struct {
	Name    string // "wssgate", "hub" or "floor"
	Version string
	WS      string // plain ws listener, host:port
	Text    string // text protocol listener
	Edge    string // TLS edge listener with a gateway: true route at /wss
	Push    string // base URL of the push API: POST Push+"/api/sendToAll"
	Secret  string // the push API's bearer token
	PProf   string // base URL of /debug/pprof/, when profiling
	Logs    []string
	proc    *child
}

// gwServerOptions are what every benchmark server is started with.
type gwServerOptions struct {
	Dir      string // private directory for config and logs
	Pin      bool   // run on CPU 1 (taskset)
	MaxConns int
	Certs    *certs // for the edge listener
	PProf    bool   // serve /debug/pprof/
}

// serverCmd is bin with args, pinned to CPU 1 when pin is set, with
// GOMAXPROCS=1.
func serverCmd(pin bool, bin string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if pin {
		cmd = exec.Command("taskset", append([]string{"-c", "1", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	return cmd
}

// gwPushSecret is the push API token of the benchmark's wssgate.
const gwPushSecret = "wssbench-push-secret"

// gatewayConfig is the configuration of the benchmark's wssgate.
// Heartbeats are off, so that nothing but the benchmark's broadcasts
// goes out; events are "none", so that connecting costs no broadcast.
func gatewayConfig(o gwServerOptions) string {
	return fmt.Sprintf(`# written by wssbench gateway
listen: { https: "127.0.0.1:0", http: "" }
shutdown_timeout: 2s
limits: { max_connections: %d }
log: { level: warn, access: false }
admin: { listen: "127.0.0.1:0", pprof: %t }
gateway:
  websocket_listen: "127.0.0.1:0"
  text_listen: "127.0.0.1:0"
  node: "127.0.0.1:1"
  events: none
  ping_interval: 0s
  push_api: { listen: "127.0.0.1:0", secret: %q }
sites:
  - hosts: ["localhost", "127.0.0.1"]
    tls: { cert_file: %q, key_file: %q }
    routes:
      - path: /wss
        gateway: true
`, o.MaxConns, o.PProf, gwPushSecret, o.Certs.CertFile, o.Certs.KeyFile)
}

// The lines of wssgate's banner that name its listeners.
var (
	bannerHTTPS = regexp.MustCompile(`serving https://[^/\s]+:(\d+)`)
	bannerWS    = regexp.MustCompile(`gateway WebSocket on ws://(\S+)`)
	bannerText  = regexp.MustCompile(`gateway text protocol on (\S+)`)
	bannerPush  = regexp.MustCompile(`push API on (http://[^/\s]+)/api/`)
	bannerAdmin = regexp.MustCompile(`admin on (http://[^/\s]+)`)
)

// startGatewayWssgate runs the wssgate binary with gatewayConfig and
// waits until its banner has named every listener.
func startGatewayWssgate(ctx context.Context, bin string, o gwServerOptions) (*gwServer, error) {
	cfgPath := filepath.Join(o.Dir, "wssgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(gatewayConfig(o)), 0o644); err != nil {
		return nil, fmt.Errorf("wssgate: %w", err)
	}
	version := "?"
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	find := func(lines []string, re *regexp.Regexp) string {
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		}
		return ""
	}
	all := []*regexp.Regexp{bannerHTTPS, bannerWS, bannerText, bannerPush, bannerAdmin}
	ready := func(lines []string) bool {
		for _, re := range all {
			if find(lines, re) == "" {
				return false
			}
		}
		return true
	}
	logPath := filepath.Join(o.Dir, "wssgate.log")
	c, lines, err := startChild(ctx, "wssgate", serverCmd(o.Pin, bin, "run", "-config", cfgPath), logPath, ready)
	if err != nil {
		return nil, err
	}
	s := &gwServer{
		Name:    "wssgate",
		Version: version,
		WS:      find(lines, bannerWS),
		Text:    find(lines, bannerText),
		Edge:    "127.0.0.1:" + find(lines, bannerHTTPS),
		Push:    find(lines, bannerPush),
		Secret:  gwPushSecret,
		Logs:    []string{logPath},
		proc:    c,
	}
	if o.PProf {
		s.PProf = find(lines, bannerAdmin) + "/debug/pprof/"
	}
	return s, nil
}

// gwHostReady starts the first line of a hidden benchmark server; the
// listeners follow as name=addr fields.
const gwHostReady = "wssbench gateway server"

// startGatewayHost runs self's hidden "gateway-hub" or "gateway-floor"
// subcommand and waits until it names its listeners.
func startGatewayHost(ctx context.Context, self, kind string, o gwServerOptions) (*gwServer, error) {
	args := []string{"gateway-" + kind}
	if o.PProf {
		args = append(args, "-pprof")
	}
	logPath := filepath.Join(o.Dir, kind+".log")
	c, lines, err := startChild(ctx, kind, serverCmd(o.Pin, self, args...), logPath, firstLine)
	if err != nil {
		return nil, err
	}
	fields, ok := strings.CutPrefix(lines[0], gwHostReady+" ")
	if !ok {
		_ = c.stop()
		return nil, fmt.Errorf("%s: first line %q, want %q and listeners", kind, lines[0], gwHostReady)
	}
	s := &gwServer{Name: kind, Version: "wssbench", Logs: []string{logPath}, proc: c}
	for _, f := range strings.Fields(fields) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "ws":
			s.WS = v
		case "push":
			s.Push = "http://" + v
		case "pprof":
			s.PProf = "http://" + v + "/debug/pprof/"
		}
	}
	if s.WS == "" {
		_ = c.stop()
		return nil, fmt.Errorf("%s: first line %q names no ws listener", kind, lines[0])
	}
	return s, nil
}

// Timeouts of the hidden servers' HTTP servers.
const (
	gwReadHeaderTimeout = 10 * time.Second
	gwIdleTimeout       = time.Minute
)

// cmdGatewayHost is the hidden "gateway-hub" and "gateway-floor"
// subcommands. It serves until ctx ends (SIGTERM).
func cmdGatewayHost(ctx context.Context, kind string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway-"+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	withPProf := fs.Bool("pprof", false, "serve /debug/pprof/ on a listener of its own")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	var err error
	switch kind {
	case "hub":
		err = serveHubHost(ctx, *withPProf, stdout)
	case "floor":
		err = serveFloor(ctx, *withPProf, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wssbench gateway-%s: %v\n", kind, err)
		return exitFail
	}
	return exitOK
}

// hostServers serves each handler on a loopback listener of its own,
// announces them on stdout as gwHostReady and name=addr fields, and
// serves until ctx ends.
func hostServers(ctx context.Context, stdout io.Writer, names []string, handlers []http.Handler) error {
	var srvs []*http.Server
	var lns []net.Listener
	line := gwHostReady
	for i, h := range handlers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("listen: %w", err)
		}
		lns = append(lns, ln)
		srvs = append(srvs, &http.Server{Handler: h, ReadHeaderTimeout: gwReadHeaderTimeout, IdleTimeout: gwIdleTimeout})
		line += " " + names[i] + "=" + ln.Addr().String()
	}
	fmt.Fprintln(stdout, line)
	errs := make(chan error, len(srvs))
	for i, srv := range srvs {
		go func() { errs <- srv.Serve(lns[i]) }()
	}
	<-ctx.Done()
	for _, srv := range srvs {
		srv.Close()
	}
	var err error
	for range srvs {
		if e := <-errs; !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// pprofMux serves the Go profiler, as the admin listener's pprof does.
func pprofMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	return mux
}

// benchHandler is the hub host's business logic: a message starting
// "b " goes to every client, any other back to its sender.
type benchHandler struct {
	gateway.NopHandler
	hub *gateway.Hub
}

func (b *benchHandler) OnMessage(c gateway.ClientInfo, data []byte) {
	msg := bytes.Clone(data) // data is only valid during the call
	if bytes.HasPrefix(data, []byte("b ")) {
		b.hub.SendToAll(msg, nil, nil)
		return
	}
	b.hub.SendToClient(c.ID, msg)
}

// serveHubHost serves a hub with benchHandler on a plain ws listener.
func serveHubHost(ctx context.Context, withPProf bool, stdout io.Writer) error {
	bh := &benchHandler{}
	hub := gateway.New(gateway.Options{Handler: bh, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	bh.hub = hub
	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { hub.Run(runCtx) })
	defer func() {
		stopRun()
		wg.Wait()
	}()
	names, handlers := []string{"ws"}, []http.Handler{hub.WebSocketHandler(nil)}
	if withPProf {
		names, handlers = append(names, "pprof"), append(handlers, pprofMux())
	}
	err := hostServers(ctx, stdout, names, handlers)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hub.Shutdown(sctx)
	return err
}

// floor is the bare-write server: it keeps its clients' sockets and, on
// a trigger, writes one frame to each of them in a loop.
type floor struct {
	up websocket.Upgrader

	mu    sync.Mutex
	conns []net.Conn // kept so that their descriptors stay open
	fds   []int
}

// serveFloor serves the floor: ws connections on one listener (path
// /echo echoes, /trigger broadcasts each message it sends, any other
// path only receives), and POST /api/sendToAll {"data":"..."} on
// another.
func serveFloor(ctx context.Context, withPProf bool, stdout io.Writer) error {
	f := &floor{up: websocket.Upgrader{ReadBufferSize: 256, WriteBufferSize: 256, HandshakeTimeout: gwHandshakeTimeout}}
	defer func() {
		for _, c := range f.conns {
			c.Close()
		}
	}()
	names := []string{"ws", "push"}
	handlers := []http.Handler{http.HandlerFunc(f.serveWS), http.HandlerFunc(f.servePush)}
	if withPProf {
		names, handlers = append(names, "pprof"), append(handlers, pprofMux())
	}
	return hostServers(ctx, stdout, names, handlers)
}

func (f *floor) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := f.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	nc := ws.NetConn()
	switch r.URL.Path {
	case "/echo":
		go floorEcho(nc)
		return
	case "/trigger":
		go f.triggerReader(nc)
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return
	}
	fd := -1
	rc.Control(func(s uintptr) { fd = int(s) })
	f.mu.Lock()
	f.conns = append(f.conns, nc)
	f.fds = append(f.fds, fd)
	f.mu.Unlock()
}

// writeAll writes frame to every client's socket, one write(2) each, and
// returns how many took it whole.
func (f *floor) writeAll(frame []byte) int {
	f.mu.Lock()
	fds := f.fds
	f.mu.Unlock()
	n := 0
	for _, fd := range fds {
		if k, err := syscall.Write(fd, frame); err == nil && k == len(frame) {
			n++
		}
	}
	return n
}

func serverFrame(payload []byte) []byte {
	f := wsframe.AppendHeader(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpText, Length: uint64(len(payload))})
	return append(f, payload...)
}

func (f *floor) servePush(w http.ResponseWriter, r *http.Request) {
	var call struct {
		Data string `json:"data"`
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/sendToAll" {
		http.Error(w, "POST /api/sendToAll only", http.StatusNotFound)
		return
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&call); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := f.writeAll(serverFrame([]byte(call.Data)))
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"result\":%d}\n", n)
}

// triggerReader reads a client's messages and sends each to every
// client.
func (f *floor) triggerReader(nc net.Conn) {
	fr := floorReader{nc: nc, buf: make([]byte, 4096)}
	for {
		op, payload, err := fr.next()
		if err != nil {
			return
		}
		if op == wsframe.OpText || op == wsframe.OpBinary {
			f.writeAll(serverFrame(payload))
		}
	}
}

// floorEcho sends every data frame back, unmasked, one write per read.
func floorEcho(nc net.Conn) {
	defer nc.Close()
	fr := floorReader{nc: nc, buf: make([]byte, 4096)}
	var out []byte
	for {
		op, payload, err := fr.next()
		if err != nil {
			return
		}
		switch op {
		case wsframe.OpClose:
			nc.Write(wsframe.AppendCloseFrame(out[:0], 1000, "", false, [4]byte{}))
			return
		case wsframe.OpText, wsframe.OpBinary:
			out = wsframe.AppendHeader(out[:0], wsframe.Header{Fin: true, Opcode: op, Length: uint64(len(payload))})
			out = append(out, payload...)
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	}
}

// floorReader reads a client's frames, unmasked, one at a time;
// fragmented messages are not expected from the benchmark's client.
type floorReader struct {
	nc      net.Conn
	p       wsframe.Parser
	buf     []byte
	pending []byte
	payload []byte
	pos     int
}

func (r *floorReader) next() (op byte, payload []byte, err error) {
	r.payload = r.payload[:0]
	for {
		for len(r.pending) > 0 {
			n, ev := r.p.Parse(r.pending)
			chunk := r.pending[:n]
			r.pending = r.pending[n:]
			h := r.p.Header()
			switch ev {
			case wsframe.EventHeader:
				r.pos = 0
				if h.Length == 0 {
					return h.Opcode, r.payload, nil
				}
			case wsframe.EventPayload:
				for j := range chunk {
					chunk[j] ^= h.Key[(r.pos+j)&3]
				}
				r.pos += len(chunk)
				r.payload = append(r.payload, chunk...)
				if uint64(r.pos) == h.Length {
					return h.Opcode, r.payload, nil
				}
			case wsframe.EventControl:
				return h.Opcode, r.p.ControlPayload(), nil
			}
		}
		n, err := r.nc.Read(r.buf)
		r.pending = r.buf[:n]
		if n == 0 && err != nil {
			return 0, nil, err
		}
	}
}
