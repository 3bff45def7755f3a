// Package webhook lets a web application be the gateway's business
// worker: a [Handler] POSTs each hub event as JSON to the application's
// URL, and the application's answer may carry actions (reply, joinGroup,
// sendToGroup, bindUid, ...) that the handler runs on the hub. A Laravel
// or Django app thus plays the part of GatewayWorker's Events class.
//
// # Wiring
//
// The hub takes its Handler when it is created, and the handler needs
// the hub to run actions, so the hub is handed over afterwards:
//
//	wh, err := webhook.New(webhook.Options{URL: "http://127.0.0.1:8000/gateway/events", Secret: secret})
//	if err != nil { ... }
//	hub := gateway.New(gateway.Options{Handler: wh})
//	wh.SetHub(hub)
//	...
//	hub.Shutdown(ctx) // delivers the close events
//	wh.Close()        // then stops deliveries still retrying
//
// # Events
//
// Each event is one POST with Content-Type application/json and a JSON
// object:
//
//	{
//	  "event": "message",              // "connect", "websocket_connect", "message" or "close"
//	  "client_id": "7f0000010b5600000001",
//	  "ip": "203.0.113.7",
//	  "port": 51234,
//	  "transport": "websocket",        // or "text"
//	  "time": 1767225600,              // Unix seconds when the event happened
//	  "data": "hello",                 // message: the message text
//	  "uid": "42",                     // message and close: the bound uid, if any
//	  "session": {"name": "Alice"}     // message and close: the session, if not empty
//	}
//
// A "message" whose bytes are not UTF-8 (a binary WebSocket message)
// carries "data_base64" instead of "data". A "websocket_connect" event
// (after "connect", for WebSocket clients) carries the upgrade request:
//
//	"path": "/wss", "query": {"token": ["abc"]},
//	"header": {"User-Agent": ["..."], ...}, "cookies": {"laravel_session": "..."}
//
// A "close" event carries the client's last uid and session; the client
// is already gone from the hub.
//
// # Signature
//
// Every request carries
//
//	X-Wssgate-Event: message
//	X-Wssgate-Signature: sha256=<hex of HMAC-SHA256(secret, raw body)>
//
// The application must compute the HMAC over the raw body bytes, before
// any JSON decoding, and compare in constant time (PHP: hash_hmac and
// hash_equals).
//
// # Actions
//
// A 2xx answer may carry actions, run in order on the hub once the
// answer has arrived:
//
//	{"actions": [
//	  {"method": "reply", "data": "welcome"},
//	  {"method": "bindUid", "uid": "42"},
//	  {"method": "joinGroup", "group": "room1"},
//	  {"method": "sendToGroup", "group": "room1", "data": {"type": "joined", "id": "..."}}
//	]}
//
// An action is a push API call ([gateway.Call]: method, data, client_id,
// client_ids, uid, uids, group, groups, exclude, session). "reply" sends
// data to the event's client. An action without client_id applies to
// the event's client, so {"method":"bindUid","uid":"42"} binds the
// client that sent the message. A bad action (unknown method or field,
// missing argument) is logged and skipped; the others still run. Results
// of query methods are ignored. An empty body, a 204 or a body without
// "actions" means no actions. On a close event the client is gone, so
// actions aimed at it fail (logged at Debug); actions for others work.
//
// # Delivery
//
// Events of one client are delivered one at a time, in order, on the
// goroutine that reads that client: the next event (and the client's
// next message) waits until the previous one has been answered and its
// actions have run. Different clients' events are delivered
// concurrently. A slow application therefore slows only the clients
// whose events it is answering.
//
// An attempt that fails with a network error or a 5xx status, or that
// takes longer than Timeout, is retried up to Retries times with a
// growing pause (0.2s, 0.4s, 0.8s, ... at most 2s). A 4xx, 3xx or other
// answer is not retried. After the last attempt the event is dropped
// with one log line at Warn; a client's events are never held longer
// than (Retries+1) × Timeout plus the pauses. Since an attempt that timed
// out may have reached the application, an event can arrive twice.
package webhook
