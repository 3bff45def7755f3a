package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/wssgate/wssgate/status"
)

// Errors of Fetch that a caller may branch on; the returned error wraps
// one of them and says more.
var (
	// ErrNotRunning: nothing accepts connections at the admin address.
	ErrNotRunning = errors.New("admin: is wssgate running?")
	// ErrTokenRejected: the admin listener answered 401.
	ErrTokenRejected = errors.New("admin: admin token rejected")
)

// FetchTimeout bounds a whole Fetch, connection and answer, unless its
// context ends sooner.
const FetchTimeout = 5 * time.Second

// maxStatusBytes bounds the /status answer Fetch reads.
const maxStatusBytes = 64 << 20

// Fetch gets the status of the wssgate whose admin listener is at addr
// ("host:port", as in the configuration) over plain HTTP, sending token
// as a bearer token unless it is empty. It gives up after FetchTimeout.
//
// Its errors are meant to be shown as they are: a refused connection
// wraps ErrNotRunning ("admin: is wssgate running? admin listener
// 127.0.0.1:9180: ..."), a 401 wraps ErrTokenRejected, and any other
// failure names the address and the status or the cause.
func Fetch(ctx context.Context, addr, token string) (status.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	target := "http://" + addr + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return status.Snapshot{}, fmt.Errorf("admin: admin listener %q: %w", addr, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// A transport of its own: no proxy from the environment (the admin
	// listener is local), no connection kept after the call.
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{}).DialContext,
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return status.Snapshot{}, fetchError(addr, err)
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		if token == "" {
			return status.Snapshot{}, fmt.Errorf("%w: admin listener %s requires a token and none was given", ErrTokenRejected, addr)
		}
		return status.Snapshot{}, fmt.Errorf("%w by admin listener %s", ErrTokenRejected, addr)
	default:
		return status.Snapshot{}, fmt.Errorf("admin: admin listener %s: GET /status: %s%s", addr, resp.Status, firstLine(resp.Body))
	}
	var snap status.Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusBytes)).Decode(&snap); err != nil {
		return status.Snapshot{}, fmt.Errorf("admin: admin listener %s: GET /status: decode: %w", addr, err)
	}
	return snap, nil
}

// fetchError turns a failed request into an error naming the address.
func fetchError(addr string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // "Get "http://...": " says nothing the message does not
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w admin listener %s: %w", ErrNotRunning, addr, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("admin: admin listener %s: no answer in time: %w", addr, err)
	}
	return fmt.Errorf("admin: admin listener %s: %w", addr, err)
}

// firstLine returns ": " and the first line of an error answer's body,
// unprintable runes replaced, or "" if it has none.
func firstLine(r io.Reader) string {
	line, _, _ := bufio.NewReader(io.LimitReader(r, 512)).ReadLine()
	s := strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.TrimSpace(string(line)))
	if s != "" {
		return ": " + s
	}
	return ""
}
