// Package gateway is a GatewayWorker-style connection hub: it keeps the
// clients' connections, gives each a client id, and lets business code
// and other applications push to them by client id, uid or group.
//
// A [Hub] holds three maps, as centrifuge's hub does: client id → client,
// uid → clients and group → clients. Clients reach it through one of two
// transports sharing the hub:
//
//   - WebSocket ([Hub.WebSocketHandler]), mounted on an edge route in the
//     same process or on a listener of its own;
//   - the plain text protocol ([Hub.ServeText]): one message per line,
//     for telnet and simple TCP clients.
//
// Business code reacts to [Handler] events (OnConnect, OnWebSocketConnect,
// OnMessage, OnClose) and pushes with the GatewayWorker API: SendToAll,
// SendToClient, SendToUID, SendToGroup, JoinGroup, BindUID, SetSession,
// CloseClient and the rest, named as in GatewayWorker in Go style.
// [Hub.Call] runs the same API from a decoded [Call], for the push API
// and webhook replies.
//
// A client's session is a [Session] map. With [Options.SessionCodec] it
// may also be written and read as the bytes of another system's format
// ([Hub.SetSessionRaw], [Hub.ModifySessionRaw], [Hub.GetSessionRaw]), as
// GatewayWorker's BusinessWorkers keep PHP-serialized sessions: it is
// stored in the form last written, and the codec converts it when read
// in the other.
//
// An idle connection has no goroutine: the hub's poller (epoll, as in
// gobwas/ws's netpoll design) says when a plain TCP socket has something
// to read, and a burst of reads runs on a goroutine of its own until it
// is drained; a TLS connection has a reader goroutine. While something
// waits to be sent, a connection has a writer goroutine. A send writes
// to the socket at once, from the sending goroutine, what the socket
// takes without blocking (workerman's TcpConnection::send: write now,
// buffer on EAGAIN), and appends only the rest to the client's bounded
// queue, for the writer;
// a client whose queue overflows is disconnected and counted as a send
// failure, so a slow client never slows delivery to the others. A
// fan-out copies its receivers under the hub's lock and writes after
// releasing it: the lock is never held while a socket is written.
//
// Every goroutine has an owner that waits for it. The hub owns each
// connection's reader, goroutine or burst ([Hub.Wait] and [Hub.Shutdown]
// wait for the one that ends the connection), and the poller's
// goroutine; the reader owns its writer and waits for it before OnClose;
// [Hub.Run] and [Hub.ServeText] run on their caller's goroutines.
package gateway
