package dta

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Log lines about refused connections are rate-limited: an attacker
// decides how many there are. Per message, at most quietBurst lines are
// written in each quietInterval; the others are counted, and one summary
// line per message and interval says how many were left out and from how
// many sources.
const (
	quietInterval = 10 * time.Second
	quietBurst    = 5
	// maxLoggedErr bounds an error text (it may quote peer input).
	maxLoggedErr = 256
	// maxQuietSources bounds the distinct sources counted per interval.
	maxQuietSources = 1024
)

type quietLog struct {
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	start time.Time
	msgs  map[string]*quietCount
}

type quietCount struct {
	written    int
	suppressed int
	sources    map[string]struct{}
	manySrc    bool
}

func newQuietLog(log *slog.Logger, now func() time.Time) *quietLog {
	return &quietLog{log: log, now: now, msgs: make(map[string]*quietCount)}
}

// warn writes msg at WARN level unless msg was written quietBurst times in
// this interval; src is the source the line is about ("" for none).
func (q *quietLog) warn(msg, src string, args ...any) {
	q.mu.Lock()
	now := q.now()
	if now.Sub(q.start) >= quietInterval || now.Before(q.start) {
		q.flushLocked()
		q.start = now
	}
	c := q.msgs[msg]
	if c == nil {
		c = &quietCount{sources: make(map[string]struct{})}
		q.msgs[msg] = c
	}
	if c.written < quietBurst {
		c.written++
		q.mu.Unlock()
		if src != "" {
			args = append([]any{"source", src}, args...)
		}
		q.log.Warn(msg, args...)
		return
	}
	c.suppressed++
	if src != "" {
		if len(c.sources) < maxQuietSources {
			c.sources[src] = struct{}{}
		} else if _, ok := c.sources[src]; !ok {
			c.manySrc = true
		}
	}
	q.mu.Unlock()
}

// flush writes the summary lines of the interval now ending.
func (q *quietLog) flush() {
	q.mu.Lock()
	q.flushLocked()
	q.start = q.now()
	q.mu.Unlock()
}

func (q *quietLog) flushLocked() {
	for msg, c := range q.msgs {
		if c.suppressed > 0 {
			n := fmt.Sprint(len(c.sources))
			if c.manySrc {
				n = "more than " + n
			}
			q.log.Warn("repeated lines left out", "msg", msg, "count", c.suppressed, "sources", n, "interval", quietInterval.String())
		}
	}
	clear(q.msgs)
}

// cutErr bounds an error's text for a log line.
func cutErr(err error) string {
	s := err.Error()
	if len(s) <= maxLoggedErr {
		return s
	}
	i := maxLoggedErr
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strings.ToValidUTF8(s[:i], "") + "…"
}
