package mtls

import "sync"

// writeGate is how Close and Write meet. A Write can block for long in the
// underlying connection while holding the write side's lock; Close must
// not queue behind it to send close_notify. So Writes pass the gate while
// they run, and Close shuts it: Writes that come later fail with
// net.ErrClosed, and a Close that finds Writes still inside closes the
// socket at once (which is what unblocks them) without close_notify.
type writeGate struct {
	mu      sync.Mutex
	shut    bool
	writers int // Writes inside
}

// enter lets a Write in; false once the gate is shut. A true result must
// be paired with leave.
func (g *writeGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut {
		return false
	}
	g.writers++
	return true
}

func (g *writeGate) leave() {
	g.mu.Lock()
	g.writers--
	g.mu.Unlock()
}

// close shuts the gate. first is false if it was already shut; busy
// reports Writes still inside.
func (g *writeGate) close() (first, busy bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut {
		return false, false
	}
	g.shut = true
	return true, g.writers > 0
}
