package gateway

import (
	"errors"
	"fmt"
)

// This file opens the hub's internals to the external tests (package
// gateway_test), which serve hubs with the gatewaytest kit.

// SetFirstCounter makes a hub built from o start its client id counters
// at n, for tests of the counter's wrap.
func SetFirstCounter(o *Options, n uint32) { o.firstCounter = n }

// SetNextCounter sets the counter of h's next client id.
func (h *Hub) SetNextCounter(n uint32) {
	h.ids.mu.Lock()
	defer h.ids.mu.Unlock()
	h.ids.next = n
}

// Writing reports whether the writer of client id is in a batch: it has
// started writing what is queued and not finished.
func (h *Hub) Writing(id string) bool {
	h.mu.RLock()
	c := h.clients[id]
	h.mu.RUnlock()
	return c != nil && c.writing.Load() != 0
}

// KnownMethod reports whether [Hub.Call] knows the method name.
func KnownMethod(name string) bool { return method(name) != nil }

// CheckIndexes reports every disagreement among h's three maps: each
// group member and uid binding must be a connected client that lists it,
// and no group may be kept empty. nil means they agree.
func (h *Hub) CheckIndexes() error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var errs []error
	for g, m := range h.groups {
		if len(m) == 0 {
			errs = append(errs, fmt.Errorf("empty group %s kept", g))
		}
		for id, c := range m {
			if h.clients[id] != c {
				errs = append(errs, fmt.Errorf("group %s lists %s, which is gone", g, id))
			}
			if _, ok := c.groups[g]; !ok {
				errs = append(errs, fmt.Errorf("group %s lists %s, which does not list it", g, id))
			}
		}
	}
	for uid, m := range h.uids {
		for id, c := range m {
			if h.clients[id] != c || c.uid != uid {
				errs = append(errs, fmt.Errorf("uid %s lists %s, bound to %q", uid, id, c.uid))
			}
		}
	}
	return errors.Join(errs...)
}
