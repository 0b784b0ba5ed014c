package mtls

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// waitReadable blocks until the underlying connection has something to
// read (data, EOF or an error) without holding a read buffer, so that an
// idle connection costs no buffer memory. It works for the net package's
// TCP and Unix connections (not for wrappers, which may buffer data of
// their own): inside the runtime poller's wait loop it peeks at one byte
// with MSG_DONTWAIT, so read deadlines, Close and HandshakeContext's
// interrupt are honoured. Errors of the wait itself (deadline, Close) are
// left to the Read that follows; an error the peek received (a reset) is
// returned as that Read would have returned it, since the peek consumed it.
// c.in must be held.
func (c *Conn) waitReadable() error {
	if !c.rawConn() {
		return nil
	}
	c.peekErr = 0
	c.rc.Read(c.peekFn)
	return c.takePeekErr()
}

// rawConn sets up c.rc for buffer-less waiting and reports whether the
// underlying connection allows it. c.in must be held.
func (c *Conn) rawConn() bool {
	if c.rc != nil {
		return true
	}
	if c.noRawConn {
		return false
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
		return false
	}
	c.rc = rc
	c.peekFn = c.peek
	c.readNowFn = c.readNowFD
	return true
}

// readNow reads into c.raw[c.rend:] what the socket already holds, without
// blocking. It reports false only when there was nothing (EAGAIN); data,
// EOF (which the next read sees again) and errors count as something, an
// error being left in c.peekErr for the caller. Without a raw connection
// it cannot tell and says true (the buffers are kept). c.in must be held.
func (c *Conn) readNow() bool {
	if !c.rawConn() {
		return true
	}
	c.peekErr, c.readNowN, c.readNowAgain = 0, 0, false
	if err := c.rc.Control(c.readNowFn); err != nil {
		return true
	}
	c.rend += c.readNowN
	return !c.readNowAgain
}

func (c *Conn) readNowFD(fd uintptr) {
	for {
		n, err := syscall.Read(int(fd), c.raw[c.rend:])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			c.readNowAgain = true
		case err != nil:
			if errno, ok := err.(syscall.Errno); ok {
				c.peekErr = errno
			}
		case n > 0:
			c.readNowN = n
		}
		return
	}
}

// takePeekErr returns, once, the error a peek consumed (a reset), as the
// Read it stood in for would have returned it.
func (c *Conn) takePeekErr() error {
	if c.peekErr == 0 {
		return nil
	}
	errno := c.peekErr
	c.peekErr = 0
	return &net.OpError{Op: "read", Net: c.conn.LocalAddr().Network(), Source: c.conn.LocalAddr(),
		Addr: c.conn.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
}

// peek reports whether fd has something to read: false (keep waiting) only
// on EAGAIN.
func (c *Conn) peek(fd uintptr) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			return false
		}
		if errno, ok := err.(syscall.Errno); ok {
			c.peekErr = errno
		}
		return true
	}
}
