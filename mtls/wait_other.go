//go:build !linux

package mtls

import "net"

// readiness cannot wait without a read here: the Read that follows blocks
// holding a (small, pooled) buffer.
type readiness struct{}

// wait is a no-op here.
func (r *readiness) wait(net.Conn) error { return nil }

// readNow cannot read without blocking here: keep the buffers.
func (r *readiness) readNow(net.Conn, []byte) (int, bool) { return 0, true }

// takeErr: no peek, no consumed error.
func (r *readiness) takeErr(net.Conn) error { return nil }
