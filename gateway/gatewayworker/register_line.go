package gatewayworker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The Register speaks workerman's Text protocol: one message per line,
// ended by "\n" (a trailing "\r" is dropped), each a JSON object with an
// "event" key.

// Register events.
const (
	EventGatewayConnect     = "gateway_connect"     // Gateway → Register: its inner address
	EventWorkerConnect      = "worker_connect"      // BusinessWorker or GatewayClient → Register
	EventBroadcastAddresses = "broadcast_addresses" // Register → workers: every Gateway's inner address
	EventPing               = "ping"                // Gateway or BusinessWorker → Register: keep-alive
)

// RegisterMessage is one decoded Register line.
type RegisterMessage struct {
	Event     string
	Address   string   // gateway_connect
	SecretKey string   // gateway_connect, worker_connect; "" when absent, as PHP's isset
	Addresses []string // broadcast_addresses
}

// AppendGatewayConnect appends the line a Gateway sends to register its
// inner address. PHP builds it by concatenation, spaces after the commas
// included; the values here are escaped only where PHP's line would not
// be JSON (a '"', a '\' or a control character), so that a usual address
// and key give PHP's bytes.
func AppendGatewayConnect(b []byte, address, secretKey string) []byte {
	b = append(b, `{"event":"gateway_connect", "address":`...)
	b = appendJSONStringMinimal(b, address)
	b = append(b, `, "secret_key":`...)
	b = appendJSONStringMinimal(b, secretKey)
	return append(b, "}\n"...)
}

// AppendWorkerConnect appends the line a BusinessWorker or GatewayClient
// sends to get the Gateway addresses.
func AppendWorkerConnect(b []byte, secretKey string) []byte {
	b = append(b, `{"event":"worker_connect","secret_key":`...)
	b = appendJSONStringMinimal(b, secretKey)
	return append(b, "}\n"...)
}

// AppendPing appends the Register keep-alive line.
func AppendPing(b []byte) []byte { return append(b, `{"event":"ping"}`+"\n"...) }

// AppendBroadcastAddresses appends the Register's address list line, as
// json_encode writes it (slashes and non-ASCII escaped). A nil list is
// written as [].
func AppendBroadcastAddresses(b []byte, addresses []string) []byte {
	b = append(b, `{"event":"broadcast_addresses","addresses":[`...)
	for i, a := range addresses {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPHPJSONString(b, a)
	}
	return append(b, "]}\n"...)
}

// ParseRegisterLine decodes one Register line, with or without its line
// end. It fails with ErrBadRegisterLine when the line is not a JSON
// object with a non-empty string "event", or when a field it uses has
// the wrong type. "addresses" may be a list or, as PHP writes a list
// with holes, an object; either way its values are kept in order.
func ParseRegisterLine(line []byte) (RegisterMessage, error) {
	line = bytes.TrimRight(line, "\r\n")
	var raw struct {
		Event     json.RawMessage `json:"event"`
		Address   json.RawMessage `json:"address"`
		SecretKey json.RawMessage `json:"secret_key"`
		Addresses json.RawMessage `json:"addresses"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return RegisterMessage{}, fmt.Errorf("%w: %v", ErrBadRegisterLine, err)
	}
	var m RegisterMessage
	if err := optString(raw.Event, &m.Event); err != nil || m.Event == "" {
		return m, fmt.Errorf("%w: no event", ErrBadRegisterLine)
	}
	if err := optString(raw.Address, &m.Address); err != nil {
		return m, fmt.Errorf("%w: address: %v", ErrBadRegisterLine, err)
	}
	if err := optString(raw.SecretKey, &m.SecretKey); err != nil {
		return m, fmt.Errorf("%w: secret_key: %v", ErrBadRegisterLine, err)
	}
	if len(raw.Addresses) > 0 && string(raw.Addresses) != "null" {
		list, err := stringValues(raw.Addresses)
		if err != nil {
			return m, fmt.Errorf("%w: addresses: %v", ErrBadRegisterLine, err)
		}
		m.Addresses = list
	}
	return m, nil
}

// optString decodes a JSON string into s; absent or null leaves s "".
func optString(raw json.RawMessage, s *string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, s)
}

// stringValues returns the string values of a JSON list or object, in
// order.
func stringValues(raw json.RawMessage) ([]string, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	open, ok := tok.(json.Delim)
	if !ok || (open != '[' && open != '{') {
		return nil, errors.New("not a list")
	}
	out := []string{}
	for d.More() {
		if open == '{' {
			if _, err := d.Token(); err != nil { // the key
				return nil, err
			}
		}
		var s string
		if err := d.Decode(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// readLine reads one line of at most max bytes (without its end) from
// r. A line still unfinished after max bytes gives ErrPacketTooLarge; a
// stream that ends inside a line gives ErrTruncated, one that ends
// between lines io.EOF. The result is valid until the next read.
func readLine(r *bufio.Reader, max int, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		frag, err := r.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > max+1 {
			return nil, ErrPacketTooLarge
		}
		switch {
		case err == nil:
			return bytes.TrimRight(buf, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) > 0 {
				return nil, ErrTruncated
			}
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}
