package listeners

import (
	"net"
	"os"

	"github.com/coreos/go-systemd/v22/activation"
)

// Activated returns the listening sockets systemd passed by socket
// activation (LISTEN_FDS), or none when it passed none. It unsets the
// LISTEN_* variables, which a new binary started by a [Handoff] must
// not see. Pass them to [NewSet], which uses each for the configured
// address it is bound to. The error says why some could not be used.
func Activated() ([]net.Listener, error) {
	if os.Getenv("LISTEN_FDS") == "" {
		return nil, nil
	}
	lns, err := activation.Listeners()
	var out []net.Listener
	for _, ln := range lns {
		if ln != nil {
			out = append(out, ln)
		}
	}
	return out, err
}
