package config

import (
	"time"
)

// Config is the whole wssgate configuration, as read from YAML.
//
// The zero value is not useful; start from [Default] (which [Load] does)
// so that keys left out of a file keep their documented defaults.
type Config struct {
	// Listen holds the addresses wssgate accepts connections on.
	Listen Listen `yaml:"listen"`
	// TLS holds settings shared by every site's TLS.
	TLS TLS `yaml:"tls"`
	// TrustedProxies lists CIDRs (or single addresses) of proxies and load
	// balancers in front of wssgate. Forwarding headers (X-Forwarded-For,
	// X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, Forwarded) sent by
	// any other peer are discarded and replaced. Empty means trust no one.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ShutdownTimeout is how long a graceful stop waits for open WebSocket
	// streams to finish their closing handshake after each was sent close
	// 1001 (Going Away); what is still open then is closed. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// DrainTimeout is how long the old process keeps serving its open
	// connections after a binary upgrade (wssgate upgrade) handed its
	// listeners to the new one; what is still open then is sent close
	// 1001 and given shutdown_timeout to finish. Default 5m; 0s sends
	// 1001 at once.
	DrainTimeout *time.Duration `yaml:"drain_timeout"`
	// PIDFile is where the serving process writes its PID, replaced
	// atomically by the new process after an upgrade. Empty, the
	// default, writes none; wssgate stop, reload and upgrade then learn
	// the PID from the admin listener.
	PIDFile string `yaml:"pid_file"`
	// Admin configures the admin listener: status, metrics, health.
	Admin Admin `yaml:"admin"`
	// Limits bounds time and resources spent on clients and upstreams.
	Limits Limits `yaml:"limits"`
	// Log selects the log format and level.
	Log Log `yaml:"log"`
	// Gateway configures the bundled GatewayWorker-style gateway: its own
	// listeners, heartbeats, limits, push API and business events. Edge
	// routes reach it with gateway: true.
	Gateway Gateway `yaml:"gateway"`
	// Sites are the virtual hosts served, picked by SNI and Host. The first
	// site's certificate is also served to clients that send no SNI or an
	// unknown name. At least one site is required.
	Sites []Site `yaml:"sites"`

	// Source records where each key was read from. It is nil for a Config
	// built in code; errors then carry key paths without file and line.
	Source *Source `yaml:"-"`
}

// Admin configures the admin listener. It serves GET /status (JSON),
// /metrics (Prometheus), /healthz, /readyz and, when Pprof is set,
// /debug/pprof/. It changes nothing: stop, reload and upgrade are
// signals, which only the process's owner (or root) may send.
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9180"; "" turns
	// it off. An address that is not loopback needs a token.
	Listen string `yaml:"listen"`
	// Token, when set, is required of every request as
	// "Authorization: Bearer <token>". [Config.AdminToken] returns it,
	// or the token TokenFile or TokenEnv give.
	Token string `yaml:"token"`
	// TokenFile is a file holding the token (surrounding space trimmed).
	TokenFile string `yaml:"token_file"`
	// TokenEnv names an environment variable holding the token.
	TokenEnv string `yaml:"token_env"`
	// Pprof serves Go's profiler under /debug/pprof/. Default false.
	Pprof bool `yaml:"pprof"`
}

// Listen holds listener addresses.
type Listen struct {
	// HTTPS is the TLS listener for wss:// and https://. Default ":443".
	HTTPS string `yaml:"https"`
	// HTTP is the plain listener; it redirects every request to https.
	// Default ":80"; the empty string turns it off.
	HTTP string `yaml:"http"`
}

// TLS holds settings shared by every site.
type TLS struct {
	// MinVersion is the lowest TLS version accepted: "1.2" (the default)
	// or "1.3". TLS 1.2 is limited to ECDHE key exchange with AEAD ciphers
	// (Mozilla's "intermediate" profile).
	MinVersion string `yaml:"min_version"`
	// ACME configures the CA that issues certificates for sites with
	// tls.acme: true. Unused when no site asks for ACME.
	ACME ACME `yaml:"acme"`
}

// Limits bounds time and resources. A zero field means its default.
type Limits struct {
	// HandshakeTimeout bounds the TLS handshake plus reading the request
	// headers (nginx client_header_timeout). Default 10s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ReadTimeout bounds reading a whole plain HTTP request, body included.
	// It does not apply to WebSocket streams. Default 60s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// KeepaliveTimeout is how long an idle HTTP keep-alive connection is
	// kept between requests (nginx keepalive_timeout). Default 75s.
	KeepaliveTimeout time.Duration `yaml:"keepalive_timeout"`
	// MaxHeaderBytes bounds the request line plus headers. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConnections bounds the requests and WebSocket streams handled at
	// once across all sites; one more gets 503. Zero, the default, means
	// as many as the process's open-file limit allows, two descriptors a
	// proxied stream: (limit − 100) / 2, or 10000 where the limit is not
	// known. [Config.ApplyOpenFileLimit] works this out; wssgate run
	// calls it at start and on every reload.
	MaxConnections int `yaml:"max_connections"`
	// ListenerConnections caps the connections one listener holds open
	// at once, by listener name (https, http, gateway_text,
	// gateway_websocket, push_api, gw_register, gw_inner, admin), within
	// the process's connection budget ([Config.ConnectionBudget]). A
	// listener at its cap stops accepting until one of its connections
	// closes. A name left out gets its default ([Config.ListenerCap]):
	// 1024 for http, gateway_text and gw_inner, 256 for push_api and
	// gw_register, 32 for admin, none for https and gateway_websocket;
	// 0 means no cap of its own.
	ListenerConnections map[string]int `yaml:"listener_connections"`
	// DialTimeout bounds connecting to an upstream: TCP connect, TLS
	// handshake and, for WebSocket, the upgrade response
	// (nginx proxy_connect_timeout). Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ResponseTimeout bounds waiting for a plain HTTP upstream's response
	// headers (nginx proxy_read_timeout for ordinary requests). Default 60s.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// SendTimeout bounds a write that makes no progress: a plain response
	// whose client stopped reading is cut, and a WebSocket stream whose
	// client or upstream stopped reading is ended, the other side told
	// that the peer went away (nginx send_timeout / proxy_send_timeout).
	// Default 60s.
	SendTimeout time.Duration `yaml:"send_timeout"`
}

// Log selects logging.
type Log struct {
	// Format is "text" (the default) or "json".
	Format string `yaml:"format"`
	// Level is "debug", "info" (the default), "warn" or "error".
	Level string `yaml:"level"`
	// Access turns on one access line per request and per WebSocket stream,
	// written when it ends. Default true.
	Access *bool `yaml:"access"`
	// AccessFile is where access lines go: "" (the default) writes them
	// to the process log on standard error, "stdout" to standard output,
	// anything else names a file that is appended to and reopened on
	// SIGUSR1 (after logrotate moved it).
	AccessFile string `yaml:"access_file"`
}

// Site is one virtual host.
type Site struct {
	// Hosts are the names this site answers to, matched against SNI and
	// the Host header (port ignored, case-insensitive). A leading "*."
	// matches exactly one more label: "*.example.com" matches
	// "a.example.com" but not "example.com" or "a.b.example.com".
	Hosts []string `yaml:"hosts"`
	// TLS is where the site's certificate comes from.
	TLS SiteTLS `yaml:"tls"`
	// MaxConnections bounds this site's requests and streams at once;
	// one more gets 503. Zero means only the global limit applies.
	MaxConnections int `yaml:"max_connections"`
	// Routes map path prefixes to handlers; the longest matching prefix
	// wins. A request that matches none gets 404.
	Routes []Route `yaml:"routes"`
}

// SiteTLS says where a site's certificate comes from: exactly one of a
// certificate/key file pair, Internal or ACME.
type SiteTLS struct {
	// CertFile is a PEM file with the leaf certificate first, followed by
	// its intermediates (the full chain, as WeChat and Android require).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key (RSA, ECDSA or Ed25519) of CertFile.
	KeyFile string `yaml:"key_file"`
	// Internal serves a self-signed certificate for the site's hosts,
	// generated once and kept under the user's config directory. For local
	// development only: browsers warn until it is trusted.
	Internal bool `yaml:"internal"`
	// ACME obtains and renews a certificate for each of the site's hosts
	// from the CA in the global tls.acme block (Let's Encrypt by default).
	// The hosts must be public DNS names that resolve to this server, and
	// the CA must reach it on port 443 or 80. Wildcard hosts cannot be
	// used: they need the DNS-01 challenge.
	ACME bool `yaml:"acme"`
}

// Route maps a path prefix to exactly one kind of handler: Upstreams,
// Gateway, Root, Respond or ChatPage.
type Route struct {
	// Path is the prefix matched on segment boundaries: "/wss" matches
	// "/wss" and "/wss/x" but not "/wssx". "/" matches every path.
	Path string `yaml:"path"`
	// Upstreams are backend base URLs, tried round-robin. Schemes ws and
	// wss accept only WebSocket upgrades (other requests get 426); http
	// and https proxy ordinary requests and WebSocket upgrades alike. All
	// upstreams of a route share one family: ws/wss or http/https.
	// A URL path, if any, is prepended to the request path.
	Upstreams []string `yaml:"upstreams"`
	// StripPrefix removes Path from the request path before it goes on,
	// to an upstream or to the Root directory ("/wss/x" → "/x").
	StripPrefix bool `yaml:"strip_prefix"`
	// AllowedOrigins lists the Origin values ("https://chat.example.com",
	// or "https://*.example.com") whose WebSocket upgrades are accepted;
	// another Origin gets 403. Empty accepts any. A request without an
	// Origin header (not a browser) is accepted.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Gateway serves the route's WebSocket upgrades with the bundled
	// gateway, in process (no loopback hop). AllowedOrigins, limits and
	// access logs apply as for upstreams. Plain requests get 426.
	Gateway bool `yaml:"gateway"`
	// ChatPage serves the bundled chat demo page, which connects to the
	// gateway at /wss on the same host.
	ChatPage bool `yaml:"chat_page"`
	// Root serves static files from this directory. The request path
	// (after StripPrefix) is looked up under it. Directory listings and
	// dot-files are never served. Every path is resolved inside it,
	// symbolic links included: a link that leads out of it is not
	// followed (404), unless FollowSymlinks is set.
	Root string `yaml:"root"`
	// FollowSymlinks lets Root serve files that symbolic links reach
	// outside it. Default false.
	FollowSymlinks bool `yaml:"follow_symlinks"`
	// Respond answers every request with a fixed response.
	Respond *Respond `yaml:"respond"`
	// Headers are set on every request sent to the upstreams, replacing
	// what the client sent under those names (nginx proxy_set_header).
	// Host sets the Host the upstreams see (default: the client's).
	// Hop-by-hop and Sec-WebSocket-* headers cannot be set.
	Headers map[string]string `yaml:"headers"`
	// UpstreamTLS configures TLS toward wss:// and https:// upstreams.
	UpstreamTLS UpstreamTLS `yaml:"upstream_tls"`
	// MaxFails is how many failed connection attempts within FailTimeout
	// mark an upstream down; it is then skipped for FailTimeout
	// (nginx max_fails), except that when every upstream is down the one
	// whose cool-off ends first is still tried. Default 1.
	MaxFails int `yaml:"max_fails"`
	// FailTimeout is both the window for MaxFails and the cool-off of a
	// down upstream (nginx fail_timeout). Default 10s.
	FailTimeout time.Duration `yaml:"fail_timeout"`
	// IdleTimeout closes a WebSocket stream (close 1001 to both sides)
	// when nothing at all, not even a ping or a pong, has come from
	// either side for this long. Default 10m ([Route.Idle]); 0s never
	// closes an idle stream.
	IdleTimeout *time.Duration `yaml:"idle_timeout"`
	// MaxFrameBytes bounds one frame from a client on a WebSocket route:
	// a frame whose length header says more gets the client close 1009
	// and the upstream 1001 at once, before its payload is read. Default
	// 16 MiB ([Route.FrameLimit]); 0 turns the check off.
	MaxFrameBytes *int64 `yaml:"max_frame_bytes"`
	// PingInterval makes the edge send a WebSocket ping to the client this
	// often, keeping NAT and mobile links open. Zero (the default) is off.
	PingInterval time.Duration `yaml:"ping_interval"`
	// PingTimeout closes a stream whose client has sent nothing (not even
	// a pong) for this long; used only with PingInterval. Default three
	// times PingInterval.
	PingTimeout time.Duration `yaml:"ping_timeout"`
}

// Gateway configures the bundled gateway. Its keys are a contract with
// GatewayWorker users: ping_interval, ping_not_response_limit and
// ping_data mean what pingInterval, pingNotResponseLimit and pingData
// mean there.
type Gateway struct {
	// TextListen is the TCP address of the text protocol (one message per
	// line, as telnet sends it). Empty, the default, turns it off.
	TextListen string `yaml:"text_listen"`
	// WebSocketListen is an optional plain ws:// listener of the gateway's
	// own, for a gateway behind another proxy. Edge routes do not need it.
	// Empty, the default, turns it off.
	WebSocketListen string `yaml:"websocket_listen"`
	// Node is the address written into client ids (IPv4 and port, as
	// GatewayWorker writes its inner address); each node of a cluster
	// needs its own. Default: push_api.listen when it is an IPv4 address,
	// else 127.0.0.1:0.
	Node string `yaml:"node"`
	// PingInterval is how often every client is sent PingData (and
	// WebSocket clients a ping frame). Default 25s; 0s turns heartbeats
	// off.
	PingInterval *time.Duration `yaml:"ping_interval"`
	// PingNotResponseLimit closes a client from which nothing (message or
	// pong) arrived for PingInterval × this many. Default 2; 0 means the
	// server only sends and never closes for silence.
	PingNotResponseLimit *int `yaml:"ping_not_response_limit"`
	// PingData is the message sent every PingInterval. Default
	// '{"type":"ping"}'; "" sends none (WebSocket pings still go out).
	PingData *string `yaml:"ping_data"`
	// SendQueue is how many messages may wait for one client before it is
	// dropped as too slow (counted as send_fail). Default 1024.
	SendQueue int `yaml:"send_queue"`
	// SendTimeout drops a client whose socket accepts nothing for this
	// long (counted as send_fail). Default 10s.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// MaxMessageBytes bounds one message from a client; a longer one
	// closes it (1009). Default 1048576.
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// Events picks the business logic: "chat" (the built-in demo chat),
	// "webhook" (POST each event to Webhook.URL), "gatewayworker" (send
	// each event to the PHP BusinessWorkers connected to the inner
	// listener of GatewayWorker) or "none" (clients are only pushed to).
	// Default: "gatewayworker" when GatewayWorker is set, else "webhook"
	// when Webhook.URL is set, else "chat".
	Events string `yaml:"events"`
	// PushAPI is the HTTP API other applications push through.
	PushAPI PushAPI `yaml:"push_api"`
	// Webhook is where business events are POSTed.
	Webhook Webhook `yaml:"webhook"`
	// GatewayWorker makes the gateway speak PHP GatewayWorker's own
	// protocols, in place of its Gateway and Register processes, so that
	// unchanged BusinessWorkers and GatewayClient work against it. Nil,
	// the default, turns them off.
	GatewayWorker *GatewayWorker `yaml:"gatewayworker"`
}

// GatewayWorker configures the GatewayWorker protocols. The gateway's
// client ids are then GatewayWorker's: LanIP, the inner port and a
// connection number.
type GatewayWorker struct {
	// RegisterListen is the address of the Register wssgate serves:
	// BusinessWorkers and GatewayClient ask it for the gateways' inner
	// addresses (PHP: start_register.php's text://0.0.0.0:1238). Empty
	// serves none; then RegisterAddress must name one.
	RegisterListen string `yaml:"register_listen"`
	// InnerListen is the Gateway's inner address (GatewayProtocol), where
	// BusinessWorkers and GatewayClient connect (PHP: lanIp and
	// startPort, one port for wssgate's one process). Required.
	InnerListen string `yaml:"inner_listen"`
	// LanIP is the IPv4 address announced to the Register, which
	// BusinessWorkers and GatewayClient connect to, and which client ids
	// carry (PHP: lanIp). Default "127.0.0.1".
	LanIP string `yaml:"lan_ip"`
	// SecretKey must be the secretKey of the PHP side; "" means none.
	// At most one of SecretKey, SecretKeyFile and SecretKeyEnv.
	SecretKey string `yaml:"secret_key"`
	// SecretKeyFile is a file holding the key (surrounding space trimmed).
	SecretKeyFile string `yaml:"secret_key_file"`
	// SecretKeyEnv names an environment variable holding the key.
	SecretKeyEnv string `yaml:"secret_key_env"`
	// RegisterAddress registers this gateway with an existing Register
	// (a PHP one, during a migration) instead of, or besides, the one
	// RegisterListen serves. Empty registers only with wssgate's own.
	RegisterAddress string `yaml:"register_address"`
}

// PushAPI configures the push API listener. It runs when the gateway is
// in use, Listen is set and a secret is given by exactly one of Secret,
// SecretFile or SecretEnv.
type PushAPI struct {
	// Listen is the API's address. Default "127.0.0.1:9181"; "" turns the
	// API off.
	Listen string `yaml:"listen"`
	// Secret is the bearer token callers send. [Config.PushAPISecret]
	// returns it, or the token SecretFile or SecretEnv give.
	Secret string `yaml:"secret"`
	// SecretFile is a file holding the token (surrounding space trimmed).
	SecretFile string `yaml:"secret_file"`
	// SecretEnv names an environment variable holding the token.
	SecretEnv string `yaml:"secret_env"`
}

// Webhook configures event delivery to an application.
type Webhook struct {
	// URL receives each event as a JSON POST. Empty turns webhooks off.
	URL string `yaml:"url"`
	// Secret signs each body (HMAC-SHA256, X-Wssgate-Signature header).
	// Exactly one of Secret, SecretFile or SecretEnv is required with URL;
	// [Config.WebhookSecret] returns the one given.
	Secret string `yaml:"secret"`
	// SecretFile is a file holding the signing secret (surrounding space
	// trimmed).
	SecretFile string `yaml:"secret_file"`
	// SecretEnv names an environment variable holding the signing secret.
	SecretEnv string `yaml:"secret_env"`
	// Timeout bounds one delivery attempt. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a failed delivery (network error or 5xx)
	// is retried, with backoff. Default 3; 4xx answers are not retried.
	Retries *int `yaml:"retries"`
}

// Respond is a fixed response (nginx "return").
type Respond struct {
	// Status is the HTTP status. Default 200.
	Status int `yaml:"status"`
	// Body is sent as is.
	Body string `yaml:"body"`
	// ContentType is the Content-Type header. Default
	// "text/plain; charset=utf-8".
	ContentType string `yaml:"content_type"`
}

// UpstreamTLS configures TLS toward upstreams.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of roots to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name sent in SNI and checked against the upstream's
	// certificate. Default: the upstream URL's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any upstream certificate. Testing only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}
