package browser

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// syncPrefix marks the console messages that Console writes to know that
// it has seen everything written before; they are not reported.
const syncPrefix = "browser: sync "

// syncWait bounds how long Console waits for its marker.
const syncWait = 2 * time.Second

// add records a console message.
func (b *Browser) add(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.console = append(b.console, m)
	close(b.seen)
	b.seen = make(chan struct{})
}

// Console returns the messages the browser's tab has written to its
// console since New, oldest first: console API calls, uncaught
// exceptions and the browser's own log entries (failed loads, blocked
// content, Content-Security-Policy violations).
//
// The browser reports messages asynchronously, so Console first writes
// a marker to the page's console and waits (up to 2s) until it comes
// back, so that every message written before the call is included. When
// the page cannot run script (it crashed, or the browser has ended),
// Console returns what has arrived.
func (b *Browser) Console() []chromedp.ConsoleMessage {
	b.mu.Lock()
	b.syncs++
	marker := fmt.Sprintf("%s%d", syncPrefix, b.syncs)
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(b.ctx, syncWait)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[any](fmt.Sprintf("console.debug(%q)", marker)))
	for err == nil {
		b.mu.Lock()
		found := false
		for _, m := range b.console {
			if m.Type == chromedp.ConsoleDebug && m.Text == marker {
				found = true
				break
			}
		}
		seen := b.seen
		b.mu.Unlock()
		if found {
			break
		}
		select {
		case <-seen:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	var out []chromedp.ConsoleMessage
	for _, m := range b.console {
		if !(m.Type == chromedp.ConsoleDebug && strings.HasPrefix(m.Text, syncPrefix)) {
			out = append(out, m)
		}
	}
	return out
}

// ConsoleErrors returns the error-level messages of [Browser.Console]
// (console.error, uncaught exceptions, failed loads, CSP violations),
// each as "type: text (url:line)", for a test to assert there are none.
func (b *Browser) ConsoleErrors() []string {
	var errs []string
	for _, m := range b.Console() {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		s := m.String()
		if m.URL != "" {
			s += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
		}
		errs = append(errs, s)
	}
	return errs
}
