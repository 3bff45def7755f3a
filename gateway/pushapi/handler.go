package pushapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/bearer"
)

// isVoid reports whether a method returns nothing: it answers
// {"ok":true}. Every other method answers {"result":...}, even when the
// result is null (getUidByClientId for an unbound client).
func isVoid(method string) bool {
	switch method {
	case "sendToClient", "setSession", "updateSession", "closeClient", "destroyClient":
		return true
	}
	return false
}

// apiError is a failure with the status it is answered with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// status maps an error to its HTTP status: the one place that does.
func status(err error) int {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, gateway.ErrClientNotFound):
		return http.StatusNotFound
	case errors.Is(err, gateway.ErrBadCall):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// ServeHTTP serves POST /api/<method> and POST /api/batch.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.secret.Authorized(r) {
		s.unauthorized.Add(1)
		s.guard.Refuse(r) // logs once a minute per source, slows down repeated failures
		w.Header().Set("WWW-Authenticate", `Bearer realm="wssgate"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized"})
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok {
		s.fail(w, r, "", errorf(http.StatusNotFound, "not found: use POST /api/<method>"))
		return
	}
	if name != "batch" && !s.known[name] {
		s.fail(w, r, name, errorf(http.StatusNotFound, "unknown method %q", bearer.Cut(name, echoMax)))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, r, name, errorf(http.StatusMethodNotAllowed, "method %s not allowed: use POST", r.Method))
		return
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		s.fail(w, r, name, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", mbe.Limit)
		} else {
			err = errorf(http.StatusBadRequest, "reading body: %v", err)
		}
		s.fail(w, r, name, err)
		return
	}
	if name == "batch" {
		s.batch(w, r, body)
		return
	}
	var c gateway.Call
	if err := decode(body, &c); err != nil {
		s.fail(w, r, name, err)
		return
	}
	if c.Method != "" && c.Method != name {
		s.fail(w, r, name, errorf(http.StatusBadRequest, "method %q in the body does not match %q in the path", bearer.Cut(c.Method, echoMax), bearer.Cut(name, echoMax)))
		return
	}
	c.Method = name
	ans, st := s.run(c)
	writeJSON(w, st, ans)
}

// fail answers a request that did not reach the hub.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, method string, err error) {
	s.calls.Add(1)
	s.failed.Add(1)
	st := status(err)
	s.log.Info("call failed", "method", bearer.Cut(method, echoMax), "status", st, "err", err, "remote", r.RemoteAddr)
	writeJSON(w, st, answer{"error": err.Error()})
}

// echoMax bounds what of a request's own input an error or a log line
// repeats: a caller cannot make the answer or the log as large as its
// request.
const echoMax = 64

// answer is one call's answer: {"ok":true}, {"result":...} or
// {"error":"..."}.
type answer map[string]any

// run runs one decoded call, counts and logs it, and returns its answer
// and status.
func (s *Server) run(c gateway.Call) (answer, int) {
	s.calls.Add(1)
	start := time.Now()
	res, err := s.call(c)
	if err != nil {
		s.failed.Add(1)
		st := status(err)
		s.log.Info("call failed", "method", bearer.Cut(c.Method, echoMax), "status", st, "err", err)
		return answer{"error": err.Error()}, st
	}
	s.log.Debug("call", "method", c.Method, "took", time.Since(start))
	if isVoid(c.Method) {
		return answer{"ok": true}, http.StatusOK
	}
	return answer{"result": nonNil(res)}, http.StatusOK
}

// call checks the method name and runs c; the hub checks the arguments.
func (s *Server) call(c gateway.Call) (any, error) {
	switch {
	case c.Method == "":
		return nil, errorf(http.StatusBadRequest, "method is required")
	case !s.known[c.Method]:
		return nil, errorf(http.StatusNotFound, "unknown method %q", bearer.Cut(c.Method, echoMax))
	}
	res, err := s.hub.Call(c)
	if errors.Is(err, gateway.ErrClientNotFound) {
		return nil, fmt.Errorf("client %q not found: %w", bearer.Cut(c.ClientID, echoMax), err)
	}
	return res, err
}

// batch runs every call of a batch in order and answers them all.
func (s *Server) batch(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Calls []json.RawMessage `json:"calls"`
	}
	if err := decode(body, &req); err != nil {
		s.fail(w, r, "batch", err)
		return
	}
	switch {
	case req.Calls == nil:
		s.fail(w, r, "batch", errorf(http.StatusBadRequest, "calls is required"))
		return
	case len(req.Calls) > maxBatch:
		s.fail(w, r, "batch", errorf(http.StatusBadRequest, "%d calls, more than %d", len(req.Calls), maxBatch))
		return
	}
	results := make([]answer, len(req.Calls))
	for i, raw := range req.Calls {
		var c gateway.Call
		if err := decode(raw, &c); err != nil {
			s.calls.Add(1)
			s.failed.Add(1)
			s.log.Info("call failed", "batch_index", i, "status", status(err), "err", err)
			results[i] = answer{"error": err.Error(), "status": status(err)}
			continue
		}
		ans, st := s.run(c)
		if st != http.StatusOK {
			ans["status"] = st
		}
		results[i] = ans
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// decode decodes a JSON object strictly: unknown fields and trailing
// data are errors. An empty body decodes as {}.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "bad JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "bad JSON: data after the object")
	}
	return nil
}

// checkContentType accepts no Content-Type, application/json and
// types ending in +json, with any parameters (charset).
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return errorf(http.StatusUnsupportedMediaType, "content type %q is not application/json", bearer.Cut(ct, echoMax))
}

// nonNil turns a nil list or map into an empty one, so that JSON shows
// [] or {} rather than null. A nil of any other type stays null.
func nonNil(v any) any {
	switch v := v.(type) {
	case []string:
		if v == nil {
			return []string{}
		}
	case map[string]gateway.Session:
		if v == nil {
			return map[string]gateway.Session{}
		}
	case gateway.Session:
		if v == nil {
			return gateway.Session{}
		}
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"encoding the answer failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
