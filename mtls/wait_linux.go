package mtls

import (
	"errors"
	"net"
	"syscall"
)

// waitReadable blocks until the underlying connection has something to
// read (data, EOF or an error) without holding a read buffer, so that an
// idle connection costs no buffer memory. It works for the net package's
// TCP and Unix connections (not for wrappers, which may buffer data of
// their own): inside the runtime poller's wait loop it peeks at one byte
// with MSG_DONTWAIT, so read deadlines, Close and HandshakeContext's
// interrupt are honoured. Errors are not reported: the Read that follows
// returns them. c.in must be held.
func (c *Conn) waitReadable() {
	if c.rc == nil {
		if c.noRawConn {
			return
		}
		var (
			rc  syscall.RawConn
			err error
		)
		switch nc := c.conn.(type) {
		case *net.TCPConn:
			rc, err = nc.SyscallConn()
		case *net.UnixConn:
			rc, err = nc.SyscallConn()
		}
		if rc == nil || err != nil {
			c.noRawConn = true
			return
		}
		c.rc = rc
		c.peekFn = c.peek
	}
	c.rc.Read(c.peekFn)
}

// peek reports whether fd has something to read: false (keep waiting) only
// on EAGAIN.
func (c *Conn) peek(fd uintptr) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return !errors.Is(err, syscall.EAGAIN)
	}
}
