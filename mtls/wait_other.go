//go:build !linux

package mtls

// waitReadable is a no-op here: the Read that follows blocks holding a
// (small, pooled) buffer.
func (c *Conn) waitReadable() error { return nil }

// readNow cannot read without blocking here: keep the buffers.
func (c *Conn) readNow() bool { return true }

// takePeekErr: no peek, no consumed error.
func (c *Conn) takePeekErr() error { return nil }
