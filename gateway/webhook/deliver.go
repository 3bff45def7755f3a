package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Sign returns the X-Wssgate-Signature value of body under secret:
// "sha256=" and the hex HMAC-SHA256. An application written in Go checks
// a request with hmac.Equal([]byte(Sign(secret, body)), []byte(header)).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// attemptError is a failed attempt; retry says whether another may
// succeed.
type attemptError struct {
	err   error
	retry bool
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// deliver POSTs ev until an attempt succeeds or may not be retried, and
// returns the body of the 2xx answer. ok is false when the event was
// dropped.
func (h *Handler) deliver(ev *Event) (answer []byte, ok bool) {
	log := h.log.With("event", ev.Event, "client_id", ev.ClientID)
	if h.ctx.Err() != nil {
		h.dropped.Add(1)
		log.Debug("webhook closed, event dropped")
		return nil, false
	}
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen with the types of Event
		h.dropped.Add(1)
		log.Warn("encoding event failed, event dropped", "err", err)
		return nil, false
	}
	sig := Sign(h.secret, body)
	start := time.Now()
	pause := h.backoff
	for attempt := 1; ; attempt++ {
		answer, err := h.attempt(ev.Event, body, sig)
		if err == nil {
			h.delivered.Add(1)
			log.Debug("event delivered", "attempts", attempt, "took", time.Since(start))
			return answer, true
		}
		var ae *attemptError
		retry := errors.As(err, &ae) && ae.retry
		switch {
		case h.ctx.Err() != nil:
			h.dropped.Add(1)
			log.Debug("webhook closed, event dropped", "err", err)
			return nil, false
		case !retry || attempt > h.retries:
			h.dropped.Add(1)
			log.Warn("webhook delivery failed, event dropped", "url", h.url, "attempts", attempt,
				"took", time.Since(start).Round(time.Millisecond), "err", err)
			return nil, false
		}
		log.Debug("webhook attempt failed, retrying", "attempt", attempt, "pause", pause, "err", err)
		h.retried.Add(1)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
		}
		pause = min(2*pause, maxBackoff)
	}
}

// attempt makes one POST, bounded by the handler's timeout.
func (h *Handler) attempt(event string, body []byte, sig string) ([]byte, error) {
	ctx, cancel := h.timeoutCtx()
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, &attemptError{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "wssgate-webhook")
	req.Header.Set("X-Wssgate-Event", event)
	req.Header.Set("X-Wssgate-Signature", sig)
	res, err := h.client.Do(req)
	if err != nil {
		return nil, &attemptError{err: err, retry: true}
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode >= 500:
		io.Copy(io.Discard, io.LimitReader(res.Body, maxResponseBytes)) // lets the connection be reused
		return nil, &attemptError{err: fmt.Errorf("status %s", res.Status), retry: true}
	case res.StatusCode < 200 || res.StatusCode > 299:
		io.Copy(io.Discard, io.LimitReader(res.Body, maxResponseBytes))
		err := fmt.Errorf("status %s", res.Status)
		if loc := res.Header.Get("Location"); loc != "" {
			err = fmt.Errorf("status %s to %s: set the webhook url to the final address", res.Status, loc)
		}
		return nil, &attemptError{err: err}
	}
	// The application has the event: a failure from here on loses the
	// actions, but retrying would deliver the event twice.
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes+1))
	if err != nil {
		h.log.Info("reading the answer failed, its actions are lost", "event", event, "err", err)
		return nil, nil
	}
	if len(answer) > maxResponseBytes {
		h.log.Info("answer over 1 MiB, its actions are ignored", "event", event)
		return nil, nil
	}
	return answer, nil
}

// timeoutCtx returns the context of one attempt: it ends after the
// timeout or when the handler is closed.
func (h *Handler) timeoutCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.ctx, h.timeout)
}
