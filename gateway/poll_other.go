//go:build !linux

package gateway

import "errors"

// poller is Linux's epoll; elsewhere every connection has a reader
// goroutine.
type poller struct{}

func (p *poller) add(*client) error { return errors.New("gateway: no poller on this system") }
func (p *poller) remove(*client)    {}
