package proxy

import (
	"testing"
	"time"
)

func TestSendDeadline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := sendDeadline{timeout: 10 * time.Second}
	steps := []struct {
		after   time.Duration
		wantSet bool
		wantAt  time.Duration
	}{
		{0, true, 10 * time.Second},                   // first write sets it
		{4 * time.Second, false, 0},                   // 6 s left: keep
		{5*time.Second + 1, true, 15*time.Second + 1}, // under 5 s left: move
		{time.Hour, true, time.Hour + 10*time.Second}, // long idle: the old one passed
	}
	for _, s := range steps {
		at, set := d.next(t0.Add(s.after))
		if set != s.wantSet || (set && !at.Equal(t0.Add(s.wantAt))) {
			t.Errorf("next at +%v = %v, %v; want set %v at +%v", s.after, at.Sub(t0), set, s.wantSet, s.wantAt)
		}
	}
	var off sendDeadline
	if _, set := off.next(t0); set {
		t.Errorf("zero sendDeadline set a deadline, want none")
	}
}
