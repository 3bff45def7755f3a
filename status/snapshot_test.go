package status

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSnapshotJSONRoundTrip(t *testing.T) {
	in := sample()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	for _, want := range []string{`"qps_interval":"10s"`, `"uptime":"26h3m4s"`, `"handshakes_failed":20`, `"send_fail":3`, `"push_calls":77`, `"load_avg":[0.08,0.5,1.25]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var out Snapshot
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", out, in)
	}
}

func TestSnapshotJSONEmptyLists(t *testing.T) {
	b, err := json.Marshal(Snapshot{})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	for _, want := range []string{`"listeners":[]`, `"routes":[]`, `"upstreams":[]`, `"problems":[]`, `"gateway":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON of the zero Snapshot lacks %s:\n%s", want, b)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Duration
		wantErr bool
	}{
		{`"10s"`, Duration(10 * time.Second), false},
		{`"1h2m3.5s"`, Duration(time.Hour + 2*time.Minute + 3500*time.Millisecond), false},
		{`1500000000`, Duration(1500 * time.Millisecond), false},
		{`"ten seconds"`, 0, true},
		{`true`, 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if d != tc.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tc.in, d, tc.want)
			}
		})
	}
}
