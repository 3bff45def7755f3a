package webhook

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/wssgate/wssgate/gateway"
)

// FuzzDecodeAction decodes arbitrary actions: an accepted one has a
// method, and a refused one is a gateway.ErrBadCall.
func FuzzDecodeAction(f *testing.F) {
	for _, s := range []string{
		`{"method":"reply","data":"welcome"}`,
		`{"method":"joinGroup","group":"room"}`,
		`{"method":"sendToUid","uid":"42","data":{"a":1}}`,
		`{"method":""}`,
		`{"method":"x","unknown":1}`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(s), "7f00000100000000000a")
	}
	f.Fuzz(func(t *testing.T, raw []byte, clientID string) {
		c, err := decodeAction(json.RawMessage(raw), clientID)
		if err != nil {
			if !errors.Is(err, gateway.ErrBadCall) {
				t.Fatalf("decodeAction(%q): %v, not an ErrBadCall", raw, err)
			}
			return
		}
		if c.Method == "" || c.Method == "reply" {
			t.Fatalf("decodeAction(%q) accepted method %q", raw, c.Method)
		}
	})
}
