package mtls

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// readiness waits until the underlying connection has something to read
// (data, EOF or an error) without holding a read buffer, so that an idle
// connection costs no buffer memory. It works for the net package's TCP
// and Unix connections (not for wrappers, which may buffer data of their
// own): inside the runtime poller's wait loop it peeks at one byte with
// MSG_DONTWAIT, so read deadlines, Close and HandshakeContext's interrupt
// are honoured. The callbacks it hands the runtime are bound once, so a
// wait allocates nothing.
type readiness struct {
	rc        syscall.RawConn
	peekFn    func(fd uintptr) bool
	readNowFn func(fd uintptr)
	dst       []byte        // where readNowFD reads to
	got       int           // bytes the last readNow got (0 with EOF)
	err       syscall.Errno // an error a peek or readNow consumed
	none      bool          // the connection cannot be waited on without a read
	again     bool          // the last readNow found nothing (EAGAIN)
	peekBuf   [1]byte
}

// wait blocks until conn is readable. Errors of the wait itself (deadline,
// Close) are left to the Read that follows; an error the peek received (a
// reset) is returned as that Read would have returned it, since the peek
// consumed it.
func (r *readiness) wait(conn net.Conn) error {
	if !r.setup(conn) {
		return nil
	}
	r.err = 0
	r.rc.Read(r.peekFn)
	return r.takeErr(conn)
}

// setup prepares buffer-less waiting on conn and reports whether conn
// allows it.
func (r *readiness) setup(conn net.Conn) bool {
	if r.rc != nil {
		return true
	}
	if r.none {
		return false
	}
	var (
		rc  syscall.RawConn
		err error
	)
	switch nc := conn.(type) {
	case *net.TCPConn:
		rc, err = nc.SyscallConn()
	case *net.UnixConn:
		rc, err = nc.SyscallConn()
	}
	if rc == nil || err != nil {
		r.none = true
		return false
	}
	r.rc = rc
	r.peekFn = r.peek
	r.readNowFn = r.readNowFD
	return true
}

// readNow reads into dst what the socket already holds, without blocking,
// and returns how many bytes it got. It reports something false only when
// there was nothing (EAGAIN); data, EOF (which the next read sees again)
// and errors count as something, an error being left for takeErr. Without
// a raw connection it cannot tell and says something (the buffers are
// kept).
func (r *readiness) readNow(conn net.Conn, dst []byte) (n int, something bool) {
	if !r.setup(conn) {
		return 0, true
	}
	r.err, r.got, r.again, r.dst = 0, 0, false, dst
	err := r.rc.Control(r.readNowFn)
	r.dst = nil
	if err != nil {
		return 0, true
	}
	return r.got, !r.again
}

func (r *readiness) readNowFD(fd uintptr) {
	for {
		n, err := syscall.Read(int(fd), r.dst)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			r.again = true
		case err != nil:
			if errno, ok := err.(syscall.Errno); ok {
				r.err = errno
			}
		case n > 0:
			r.got = n
		}
		return
	}
}

// takeErr returns, once, the error a peek or readNow consumed (a reset),
// as the Read it stood in for would have returned it.
func (r *readiness) takeErr(conn net.Conn) error {
	if r.err == 0 {
		return nil
	}
	errno := r.err
	r.err = 0
	return &net.OpError{Op: "read", Net: conn.LocalAddr().Network(), Source: conn.LocalAddr(),
		Addr: conn.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
}

// peek reports whether fd has something to read: false (keep waiting) only
// on EAGAIN.
func (r *readiness) peek(fd uintptr) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), r.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			return false
		}
		if errno, ok := err.(syscall.Errno); ok {
			r.err = errno
		}
		return true
	}
}
