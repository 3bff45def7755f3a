package cluster

import (
	"errors"
	"fmt"
)

// ErrUnavailable: the call needs Redis or another node, and Redis cannot
// be reached, or the other node did not answer within the call timeout.
// Its text starts "cluster unavailable", which the push API answers with
// status 503. Calls on this node's own clients do not fail with it.
var ErrUnavailable = errors.New("cluster unavailable")

// ErrClosed: the node has been shut down.
var ErrClosed = errors.New("cluster: node shut down")

// unavailable wraps cause in ErrUnavailable.
func unavailable(cause error) error {
	if cause == nil || errors.Is(cause, ErrUnavailable) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, cause)
}

// RemoteError is an error another node returned for a call it ran for
// this one. It wraps the gateway sentinel it stands for (ErrClientNotFound,
// ErrBadCall, ...) when there is one, so errors.Is works across nodes.
type RemoteError struct {
	Node string // the node that ran the call, as its 12 hex digits
	Msg  string // the error's text on that node
	kind error  // the sentinel, or nil
}

func (e *RemoteError) Error() string { return e.Msg }

// Unwrap returns the gateway sentinel the error stands for, if any.
func (e *RemoteError) Unwrap() error { return e.kind }
