// Package listeners owns a process's listening sockets, which outlive
// the servers that accept on them.
//
// A [Set] holds one socket per configured address. A server never owns a
// socket: it accepts through [Socket.Listener], a net.Listener over the
// socket, so that a configuration reload can start a new server on the
// same socket before the old one stops, and no connection waiting in
// the backlog is lost. Closing such a listener leaves the socket open;
// [Set.Keep] and [Set.Remove] close sockets a configuration dropped.
//
// [Handoff] passes the sockets to a new binary of the same program (a
// binary upgrade, in the words of the command line): the new process
// inherits a descriptor of every socket, opens what its configuration
// adds, and tells the old one when it serves. [Activated] takes the
// sockets systemd passes by socket activation (LISTEN_FDS).
//
// The package imports nothing from the rest of the project: a socket is
// known by its name ("https", "admin", ...) and address only.
package listeners
