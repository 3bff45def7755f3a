package tlsconf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// maxACMEResponse bounds how much of an ACME response is read.
const maxACMEResponse = 1 << 20

// caRecorder is the ACME client's transport. It passes each request on,
// ending it when ctx ends, and remembers the last problem the CA
// reported, per host where the CA names one. autocert hides the CA's own
// words when a challenge fails (it tries the next challenge type and
// then reports only that none worked), so this is where "Connection
// refused" or "DNS problem: NXDOMAIN" is found for the log.
type caRecorder struct {
	ctx  context.Context
	next *http.Transport

	mu     sync.Mutex
	seq    uint64
	byHost map[string]caProblem
	last   caProblem
}

type caProblem struct {
	seq  uint64
	text string
}

// problemDoc is an RFC 7807 problem document as ACME uses it (RFC 8555
// section 6.7), possibly inside an authorization's challenge.
type problemDoc struct {
	Type        string `json:"type"`
	Detail      string `json:"detail"`
	Subproblems []struct {
		Type       string `json:"type"`
		Detail     string `json:"detail"`
		Identifier struct {
			Value string `json:"value"`
		} `json:"identifier"`
	} `json:"subproblems"`
}

// authzDoc is the part of an ACME authorization that names failures.
type authzDoc struct {
	Identifier struct {
		Value string `json:"value"`
	} `json:"identifier"`
	Challenges []struct {
		Type  string      `json:"type"`
		Error *problemDoc `json:"error"`
	} `json:"challenges"`
}

func (r *caRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel)
	defer stop()
	resp, err := r.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	// Read the whole (small) body now, while ctx is live.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxACMEResponse))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read ACME response: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		r.inspect(resp.StatusCode, body)
	}
	return resp, nil
}

// inspect records the problems in an ACME JSON response.
func (r *caRecorder) inspect(status int, body []byte) {
	if status >= 400 {
		var p problemDoc
		if json.Unmarshal(body, &p) != nil || p.Type == "" || strings.HasSuffix(p.Type, ":badNonce") {
			return // nonces are retried by the ACME client
		}
		r.record("", describeProblem(&p))
		for _, sp := range p.Subproblems {
			if sp.Identifier.Value != "" {
				r.record(sp.Identifier.Value, describeProblem(&problemDoc{Type: sp.Type, Detail: sp.Detail}))
			}
		}
		return
	}
	var z authzDoc
	if json.Unmarshal(body, &z) != nil || z.Identifier.Value == "" {
		return
	}
	for _, c := range z.Challenges {
		if c.Error != nil && c.Error.Type != "" {
			r.record(z.Identifier.Value, c.Type+": "+describeProblem(c.Error))
		}
	}
}

// describeProblem is "type: detail" with the type's common prefix cut.
func describeProblem(p *problemDoc) string {
	t := p.Type
	if i := strings.LastIndex(t, ":error:"); i >= 0 {
		t = t[i+len(":error:"):]
	}
	return t + ": " + p.Detail
}

func (r *caRecorder) record(host, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	p := caProblem{seq: r.seq, text: text}
	if host == "" {
		r.last = p
		return
	}
	if r.byHost == nil {
		r.byHost = map[string]caProblem{}
	}
	r.byHost[strings.ToLower(host)] = p
}

// mark returns a position to pass to since.
func (r *caRecorder) mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// since returns the last problem recorded after mark about host, else
// the last one about no host in particular; "" if none.
func (r *caRecorder) since(host string, mark uint64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.byHost[host]; ok && p.seq > mark {
		return p.text
	}
	if r.last.seq > mark {
		return r.last.text
	}
	return ""
}

// closeIdle closes the transport's idle connections.
func (r *caRecorder) closeIdle() { r.next.CloseIdleConnections() }
