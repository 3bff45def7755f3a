// Package chatpage serves the chat page of the built-in chat
// ([github.com/wssgate/wssgate/gateway.Chat]): plain HTML, CSS and
// JavaScript embedded in the binary, with no build step.
//
// The page connects to wss://<its host>/wss (ws:// when it was loaded
// over http), or to the path given as ?ws=/path. It shows the messages
// and who is online, its own client id and the connection state, answers
// the hub's ping_data {"type":"pong"} without showing it, and reconnects
// with exponential backoff and jitter (0.5 s doubling to 15 s).
//
// Mount [Handler] at a path that ends in "/", beside the hub's WebSocket
// handler:
//
//	mux.Handle("/", chatpage.Handler())
//	mux.Handle("/wss", hub.WebSocketHandler(nil))
//
// Elements have stable ids for tests and scripts: #log (the messages,
// one <li> per line as received), #online (one <li data-id> per client,
// the page's own marked class="me"), #me (its client id), #state (its
// data-state is "connecting", "open" or "closed"), #input and #send.
package chatpage
