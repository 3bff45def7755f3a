package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wssgate/wssgate/gateway"
)

// runActions runs the actions in an answer to ev, in order; a bad one is
// logged and skipped.
func (h *Handler) runActions(ev *Event, answer []byte) {
	if len(bytes.TrimSpace(answer)) == 0 {
		return
	}
	log := h.log.With("event", ev.Event, "client_id", ev.ClientID)
	var a struct {
		Actions []json.RawMessage `json:"actions"`
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		log.Info("answer is not a JSON object with actions; ignored", "err", err)
		return
	}
	if len(a.Actions) == 0 {
		return
	}
	hub := h.hub.Load()
	if hub == nil {
		h.actionErrors.Add(int64(len(a.Actions)))
		log.Info("actions ignored: the webhook has no hub (SetHub was not called)", "actions", len(a.Actions))
		return
	}
	for i, raw := range a.Actions {
		c, err := decodeAction(raw, ev.ClientID)
		if err == nil {
			_, err = hub.Call(c)
		}
		if err == nil {
			h.actions.Add(1)
			log.Debug("action", "index", i, "method", c.Method)
			continue
		}
		h.actionErrors.Add(1)
		if errors.Is(err, gateway.ErrClientNotFound) && c.ClientID == ev.ClientID {
			// The event's own client has gone (always so on close).
			log.Debug("action for a client that has gone", "index", i, "method", c.Method)
			continue
		}
		log.Info("action failed", "index", i, "method", c.Method, "err", err)
	}
}

// decodeAction decodes one action strictly. "reply" becomes
// sendToClient to the event's client; an action without client_id gets
// the event's client (methods that take none ignore it).
func decodeAction(raw json.RawMessage, clientID string) (gateway.Call, error) {
	var c gateway.Call
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%w: webhook action: %w", gateway.ErrBadCall, err)
	}
	if c.Method == "" {
		return c, fmt.Errorf("%w: webhook action: method is required", gateway.ErrBadCall)
	}
	if c.Method == "reply" {
		c.Method = "sendToClient"
		c.ClientID = clientID
	}
	if c.ClientID == "" {
		c.ClientID = clientID
	}
	return c, nil
}
