package gatewayworker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/wssgate/wssgate/gateway"
)

// A Gateway keeps each client's session as the PHP-serialized string the
// BusinessWorker sent ("" for none) and copies it into the ext_data of
// every event. The functions here merge sessions as CMD_UPDATE_SESSION
// does and convert them to and from JSON for the push API.

// UpdateSession merges update into the stored session old as the PHP
// Gateway does for CMD_UPDATE_SESSION: with no stored session ("" or
// PHP's other falsy string, "0") the update is stored as it is;
// otherwise both are unserialized, merged with array_replace_recursive
// and serialized again. When either is not a serialized array (PHP then
// throws a TypeError and keeps the old session) it returns an error
// wrapping ErrSerialize.
func UpdateSession(old, update []byte) ([]byte, error) {
	if len(old) == 0 || string(old) == "0" {
		return bytes.Clone(update), nil
	}
	base, err := sessionArray(old)
	if err != nil {
		return nil, fmt.Errorf("stored session: %w", err)
	}
	repl, err := sessionArray(update)
	if err != nil {
		return nil, fmt.Errorf("session update: %w", err)
	}
	return Serialize(ReplaceRecursive(base, repl))
}

func sessionArray(s []byte) (*Array, error) {
	v, err := Unserialize(s)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*Array)
	if !ok {
		return nil, errorf("session is %s, not an array", kindName(v))
	}
	return a, nil
}

// SessionToJSON returns a stored session as a JSON object: "" (no
// session) and a serialized null are {}, and the top level is always an
// object (keys as strings), whatever its keys; nested arrays follow
// [ToJSON]'s rules.
func SessionToJSON(session []byte) ([]byte, error) {
	if len(session) == 0 {
		return []byte("{}"), nil
	}
	v, err := Unserialize(session)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case nil:
		return []byte("{}"), nil
	case *Array:
		return appendJSONObject(nil, v, 0)
	default:
		return nil, errorf("session is %s, not an array", kindName(v))
	}
}

// SessionFromJSON returns the stored form of a session given as JSON: an
// object (or []) is serialized in its key order, null means no session
// (""). Anything else is an error wrapping ErrSerialize.
func SessionFromJSON(data []byte) ([]byte, error) {
	v, err := FromJSON(data)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case nil:
		return []byte{}, nil
	case *Array:
		return Serialize(v)
	}
	return nil, errorf("session is %s, not an object", kindName(v))
}

// SessionToMap returns a stored session as the values JSON decodes to
// (numbers are float64), the form of gateway.Session. No session is an
// empty map.
func SessionToMap(session []byte) (map[string]any, error) {
	j, err := SessionToJSON(session)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, errorf("%v", err)
	}
	return m, nil
}

// SessionFromMap returns the stored form of a session given as JSON-able
// Go values (gateway.Session); keys are sorted. A nil map is no session.
func SessionFromMap(m map[string]any) ([]byte, error) {
	if m == nil {
		return []byte{}, nil
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, errorf("%v", err)
	}
	return SessionFromJSON(j)
}

// ToJSON encodes a PHP value as PHP's json_encode does with default
// flags: an array with keys 0..n-1 in order is a JSON list, any other
// array an object in its order; strings escape '/' and non-ASCII
// characters; floats use the shortest form. INF and NAN, which
// json_encode refuses, are an error.
func ToJSON(v any) ([]byte, error) { return appendJSON(nil, v, 0) }

func appendJSON(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errorf("nested deeper than %d", maxDepth)
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return b, errorf("%v has no JSON form", v)
		}
		return appendPHPFloat(b, v, 0, 'e'), nil
	case string:
		return appendPHPJSONString(b, v), nil
	case *Array:
		if !v.IsList() {
			return appendJSONObject(b, v, depth)
		}
		b = append(b, '[')
		var err error
		i := 0
		for _, e := range v.All() {
			if i > 0 {
				b = append(b, ',')
			}
			i++
			if b, err = appendJSON(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	return b, errorf("cannot encode %T as JSON", v)
}

func appendJSONObject(b []byte, a *Array, depth int) ([]byte, error) {
	b = append(b, '{')
	var err error
	i := 0
	for k, e := range a.All() {
		if i > 0 {
			b = append(b, ',')
		}
		i++
		b = append(appendPHPJSONString(b, k.String()), ':')
		if b, err = appendJSON(b, e, depth+1); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// FromJSON decodes JSON into PHP values as json_decode($data, true)
// does: objects and lists become *Array (object keys in order, numeric
// ones as integer keys), integers that fit int64 become int64, other
// numbers float64. data must hold exactly one JSON value.
func FromJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := fromJSON(d, 0)
	if err != nil {
		return nil, errorf("json: %v", err)
	}
	if _, err := d.Token(); err == nil {
		return nil, errorf("json: data after the value")
	}
	return v, nil
}

func fromJSON(d *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil, bool, string:
		return t, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !isRangeErr(err) {
			return nil, err
		}
		return f, nil
	case json.Delim:
		a := &Array{}
		switch t {
		case '[':
			for d.More() {
				v, err := fromJSON(d, depth+1)
				if err != nil {
					return nil, err
				}
				a.Append(v)
			}
		case '{':
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := fromJSON(d, depth+1)
				if err != nil {
					return nil, err
				}
				a.Set(StringKey(k), v)
			}
		default:
			return nil, errors.New("unexpected " + t.String())
		}
		if _, err := d.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return a, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// PHPSessionCodec is the gateway.SessionCodec of GatewayWorker's
// sessions: the raw form is the PHP-serialized array a BusinessWorker
// stores ("" for none), the map form what [SessionToMap] makes of it.
// A hub that an [Inner] serves needs it as its
// gateway.Options.SessionCodec; the push API and webhooks then see each
// session as JSON, and a session they set reaches the BusinessWorkers
// serialized. Its zero value is ready to use.
type PHPSessionCodec struct{}

// Marshal implements gateway.SessionCodec with [SessionFromMap]: keys
// are sorted, and a nil session is "".
func (PHPSessionCodec) Marshal(s gateway.Session) ([]byte, error) { return SessionFromMap(s) }

// Unmarshal implements gateway.SessionCodec with [SessionToMap]: "" and
// a serialized null are an empty session.
func (PHPSessionCodec) Unmarshal(b []byte) (gateway.Session, error) {
	m, err := SessionToMap(b)
	if err != nil {
		return nil, err
	}
	return m, nil
}
