package webhook

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wssgate/wssgate/gateway"
)

// Options configure a Handler.
type Options struct {
	// URL is where events are POSTed: an absolute http or https URL.
	// Required.
	URL string
	// Secret is the key of the HMAC-SHA256 signature of every request.
	// Required; leading or trailing white space is refused, as it is
	// almost always the newline at the end of a secret file.
	Secret string
	// Timeout bounds one attempt, from dialing to reading the answer.
	// Zero means 5s.
	Timeout time.Duration
	// Retries is how many times a failed attempt (network error, 5xx,
	// timeout) is retried. Zero means 3; negative means never.
	Retries int
	// Client sends the requests. Nil means a private client with dial,
	// TLS and response timeouts, at most 256 connections to the
	// application, and no redirects followed (a redirect would turn the
	// POST into a GET). It is never http.DefaultClient.
	Client *http.Client
	// Logger receives each delivery at Debug, problems at Info and
	// dropped events at Warn. Nil discards them.
	Logger *slog.Logger
}

// Defaults for zero Options fields.
const (
	DefaultTimeout = 5 * time.Second
	DefaultRetries = 3
)

const (
	firstBackoff     = 200 * time.Millisecond
	maxBackoff       = 2 * time.Second
	maxResponseBytes = 1 << 20
	maxConnsPerHost  = 256
)

// Validate reports every problem with o, joined.
func (o Options) Validate() error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("webhook: url is required"))
	} else if u, err := url.Parse(o.URL); err != nil {
		errs = append(errs, fmt.Errorf("webhook: url: %w", err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("webhook: url must be an absolute http or https URL"))
	}
	if o.Secret == "" {
		errs = append(errs, errors.New("webhook: secret is required"))
	} else if strings.TrimSpace(o.Secret) != o.Secret {
		errs = append(errs, errors.New("webhook: secret has leading or trailing white space"))
	}
	if o.Timeout < 0 {
		errs = append(errs, errors.New("webhook: timeout is negative"))
	}
	return errors.Join(errs...)
}

// Stats are a Handler's counters since it was created.
type Stats struct {
	Delivered    int64 // events the application answered with 2xx
	Dropped      int64 // events given up after the last attempt, or after Close
	Retries      int64 // attempts after a first one failed
	Actions      int64 // actions run without error
	ActionErrors int64 // actions refused or failed
}

// Handler is a [gateway.Handler] that delivers events to a web
// application. Create it with [New] and give it the hub with
// [Handler.SetHub]. Its methods are safe for concurrent use.
type Handler struct {
	hub     atomic.Pointer[gateway.Hub]
	url     string
	secret  []byte
	timeout time.Duration
	retries int
	client  *http.Client
	own     bool // client is ours: Close closes its idle connections
	log     *slog.Logger
	now     func() time.Time
	backoff time.Duration // the first pause; doubled up to maxBackoff

	ctx    context.Context // ended by Close
	cancel context.CancelFunc

	delivered, dropped, retried, actions, actionErrors atomic.Int64
}

var _ gateway.Handler = (*Handler)(nil)

// New returns a Handler with opts' zero fields set to their defaults,
// or the problems with opts.
func New(opts Options) (*Handler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{
		url:     opts.URL,
		secret:  []byte(opts.Secret),
		timeout: opts.Timeout,
		retries: opts.Retries,
		client:  opts.Client,
		log:     opts.Logger,
		now:     time.Now,
		backoff: firstBackoff,
	}
	if h.timeout == 0 {
		h.timeout = DefaultTimeout
	}
	switch {
	case h.retries == 0:
		h.retries = DefaultRetries
	case h.retries < 0:
		h.retries = 0
	}
	if h.client == nil {
		h.client = newClient(h.timeout)
		h.own = true
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "webhook")
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// newClient returns the private client: every wait bounded, redirects
// not followed.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          maxConnsPerHost,
			MaxIdleConnsPerHost:   maxConnsPerHost,
			MaxConnsPerHost:       maxConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SetHub gives the handler the hub that runs the application's actions.
// Until it is called, events are delivered but actions are dropped
// (logged at Info).
func (h *Handler) SetHub(hub *gateway.Hub) { h.hub.Store(hub) }

// Close ends deliveries in flight (their events are dropped) and drops
// later events at once. Call it after the hub's Shutdown, so that the
// close events of a graceful shutdown are delivered first, or when that
// Shutdown's context ends. It is idempotent.
func (h *Handler) Close() {
	h.cancel()
	if h.own {
		h.client.CloseIdleConnections()
	}
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	return Stats{
		Delivered:    h.delivered.Load(),
		Dropped:      h.dropped.Load(),
		Retries:      h.retried.Load(),
		Actions:      h.actions.Load(),
		ActionErrors: h.actionErrors.Load(),
	}
}

// Event is the JSON body of one delivery; the package documentation
// shows an example. Fields that do not apply to an event are omitted.
type Event struct {
	Event     string `json:"event"` // connect, websocket_connect, message, close
	ClientID  string `json:"client_id"`
	IP        string `json:"ip,omitempty"`
	Port      uint16 `json:"port,omitempty"`
	Transport string `json:"transport"` // websocket or text
	Time      int64  `json:"time"`      // Unix seconds

	// message
	Data       *string `json:"data,omitempty"`        // the message, when it is UTF-8
	DataBase64 string  `json:"data_base64,omitempty"` // the message, when it is not

	// websocket_connect
	Path    string            `json:"path,omitempty"`
	Header  http.Header       `json:"header,omitempty"`
	Query   url.Values        `json:"query,omitempty"`
	Cookies map[string]string `json:"cookies,omitempty"`

	// message and close
	UID     string          `json:"uid,omitempty"`
	Session gateway.Session `json:"session,omitempty"`
}

// Event names.
const (
	EventConnect          = "connect"
	EventWebSocketConnect = "websocket_connect"
	EventMessage          = "message"
	EventClose            = "close"
)

func (h *Handler) event(name string, ci gateway.ClientInfo) *Event {
	ev := &Event{
		Event:     name,
		ClientID:  ci.ID,
		Transport: ci.Transport,
		Time:      h.now().Unix(),
	}
	if ci.Addr.IsValid() {
		ev.IP = ci.Addr.Addr().String()
		ev.Port = ci.Addr.Port()
	}
	return ev
}

// OnConnect delivers a "connect" event.
func (h *Handler) OnConnect(ci gateway.ClientInfo) {
	h.handle(h.event(EventConnect, ci))
}

// OnWebSocketConnect delivers a "websocket_connect" event with the
// upgrade request's path, header, query and cookies.
func (h *Handler) OnWebSocketConnect(ci gateway.ClientInfo, r *gateway.WebSocketRequest) {
	ev := h.event(EventWebSocketConnect, ci)
	if r != nil {
		ev.Path, ev.Header, ev.Query, ev.Cookies = r.Path, r.Header, r.Query, r.Cookies
	}
	h.handle(ev)
}

// OnMessage delivers a "message" event with the client's current uid
// and session.
func (h *Handler) OnMessage(ci gateway.ClientInfo, data []byte) {
	ev := h.event(EventMessage, ci)
	if utf8.Valid(data) {
		s := string(data)
		ev.Data = &s
	} else {
		ev.DataBase64 = base64.StdEncoding.EncodeToString(data)
	}
	if hub := h.hub.Load(); hub != nil {
		ev.UID, _ = hub.GetUIDByClientID(ci.ID)
		ev.Session, _ = hub.GetSession(ci.ID)
	}
	h.handle(ev)
}

// OnClose delivers a "close" event with the client's last uid and
// session.
func (h *Handler) OnClose(ci gateway.ClientInfo) {
	ev := h.event(EventClose, ci)
	ev.UID, ev.Session = ci.UID, ci.Session
	h.handle(ev)
}

// handle delivers ev and runs the actions of the answer.
func (h *Handler) handle(ev *Event) {
	body, ok := h.deliver(ev)
	if ok {
		h.runActions(ev, body)
	}
}
