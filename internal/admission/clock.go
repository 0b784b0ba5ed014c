package admission

import (
	"sync"
	"time"
)

// Clock returns the current time. A nil Clock means time.Now.
type Clock func() time.Time

// Now returns c's time, or time.Now for a nil Clock.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// FakeClock is a Clock for tests: it stands still until advanced.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a FakeClock that reads start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the fake time.
func (f *FakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the fake time forward by d.
func (f *FakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// Clock returns f as a Clock.
func (f *FakeClock) Clock() Clock { return f.Now }
