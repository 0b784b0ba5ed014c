//go:build !linux

package mtls

// waitReadable is a no-op here: the Read that follows blocks holding a
// (small, pooled) buffer.
func (c *Conn) waitReadable() error { return nil }
