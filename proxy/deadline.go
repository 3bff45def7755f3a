package proxy

import "time"

// sendDeadline paces write deadlines for send_timeout: every write gets
// between timeout/2 and timeout to make progress, yet a busy writer
// moves the deadline about twice per timeout instead of before every
// write. The zero value sets no deadline.
type sendDeadline struct {
	timeout time.Duration // 0 = no deadline
	at      time.Time     // the deadline set last
}

// next returns the deadline to set before a write at now, and false when
// the one set last still leaves at least timeout/2.
func (d *sendDeadline) next(now time.Time) (time.Time, bool) {
	if d.timeout <= 0 || d.at.Sub(now) >= d.timeout/2 {
		return time.Time{}, false
	}
	d.at = now.Add(d.timeout)
	return d.at, true
}
