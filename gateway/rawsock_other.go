//go:build !unix

package gateway

import "net"

// rawSocket writes nothing where there is no write(2): every send goes
// through the client's queue and writer.
type rawSocket struct{}

func (s *rawSocket) init(net.Conn)                  {}
func (s *rawSocket) ok() bool                       { return false }
func (s *rawSocket) tryWrite(b []byte) (int, error) { return 0, nil }
func (s *rawSocket) tryRead(b []byte) (int, error)  { return 0, nil }
func (s *rawSocket) fd() int                        { return -1 }
func (s *rawSocket) shutdown(how int)               {}
