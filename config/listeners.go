package config

// Listener names one of the listening sockets a configuration can ask
// for. The names appear in status, metrics and messages.
type Listener string

// The listeners, in the order status lists them.
const (
	ListenerHTTPS            Listener = "https"             // listen.https
	ListenerHTTP             Listener = "http"              // listen.http
	ListenerGatewayText      Listener = "gateway_text"      // gateway.text_listen
	ListenerGatewayWebSocket Listener = "gateway_websocket" // gateway.websocket_listen
	ListenerPushAPI          Listener = "push_api"          // gateway.push_api.listen
	ListenerGWRegister       Listener = "gw_register"       // gateway.gatewayworker.register_listen
	ListenerGWInner          Listener = "gw_inner"          // gateway.gatewayworker.inner_listen
	ListenerAdmin            Listener = "admin"             // admin.listen
)

// Listeners returns every listener name, in the order status lists them.
func Listeners() []Listener {
	return []Listener{ListenerHTTPS, ListenerHTTP, ListenerGatewayText,
		ListenerGatewayWebSocket, ListenerPushAPI, ListenerGWRegister, ListenerGWInner, ListenerAdmin}
}

// Key is the configuration key of the listener's address, such as
// "gateway.text_listen"; the name itself for an unknown listener.
func (l Listener) Key() string {
	switch l {
	case ListenerHTTPS, ListenerHTTP:
		return "listen." + string(l)
	case ListenerAdmin:
		return "admin.listen"
	case ListenerGatewayText:
		return "gateway.text_listen"
	case ListenerGatewayWebSocket:
		return "gateway.websocket_listen"
	case ListenerPushAPI:
		return "gateway.push_api.listen"
	case ListenerGWRegister:
		return "gateway.gatewayworker.register_listen"
	case ListenerGWInner:
		return "gateway.gatewayworker.inner_listen"
	}
	return string(l)
}

// Order is the listener's place in [Listeners], or len(Listeners()) for
// an unknown name: for sorting.
func (l Listener) Order() int {
	all := Listeners()
	for i, x := range all {
		if x == l {
			return i
		}
	}
	return len(all)
}
