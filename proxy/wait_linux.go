package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// readinessWaiter returns a function that blocks until c has data (or EOF,
// or an error) without holding a read buffer, for plain TCP and UNIX stream sources; nil for
// anything else. It peeks one byte with MSG_DONTWAIT inside the runtime
// poller's wait loop, so deadlines and Close are honoured. An error the peek
// receives (a reset) is returned as a Read would have returned it: the peek
// consumed it, and the Read after it would see a clean EOF. A clean EOF is
// returned as io.EOF.
func readinessWaiter(c net.Conn) func() error {
	var tc interface {
		net.Conn
		SyscallConn() (syscall.RawConn, error)
	}
	switch c := c.(type) {
	case *net.TCPConn:
		tc = c
	case *net.UnixConn: // a stream socket: the proxy dials and listens on "unix" only
		tc = c
	default:
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var (
		one     [1]byte
		peekErr syscall.Errno
		atEOF   bool
	)
	check := func(fd uintptr) bool {
		for {
			n, errno := peekOne(fd, &one)
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			case 0:
				atEOF = n == 0
			default:
				peekErr = errno
			}
			return true
		}
	}
	return func() error {
		peekErr, atEOF = 0, false
		if err := rc.Read(check); err != nil {
			return err
		}
		if peekErr != 0 {
			return peekError(tc, peekErr)
		}
		if atEOF {
			// The peer finished: report it here, so that the copy loop
			// takes no buffer for a read that returns nothing (a mass
			// disconnect would otherwise make every waking connection
			// take a fresh 32 KiB buffer at once).
			return io.EOF
		}
		return nil
	}
}

// nonBlockingReader returns a function that reads from c what it already
// holds, without waiting: again reports that there was nothing (EAGAIN).
// Plain TCP and UNIX stream sources only; nil for anything else. A copy
// that has just filled its buffer reads on with it - data is likely still
// there - instead of peeking (readinessWaiter) and reading again: one
// system call instead of two for each buffer of a bulk stream.
func nonBlockingReader(c net.Conn) func(b []byte) (n int, again bool, err error) {
	var tc interface {
		net.Conn
		SyscallConn() (syscall.RawConn, error)
	}
	switch c := c.(type) {
	case *net.TCPConn:
		tc = c
	case *net.UnixConn:
		tc = c
	default:
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var (
		buf   []byte
		n     int
		errno syscall.Errno
		again bool
	)
	read := func(fd uintptr) bool {
		for {
			m, err := syscall.Read(int(fd), buf)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				again = true
			case err != nil:
				errno, _ = err.(syscall.Errno)
			default:
				n = m
			}
			return true // never wait: that is the caller's choice
		}
	}
	return func(b []byte) (int, bool, error) {
		buf, n, errno, again = b, 0, 0, false
		if err := rc.Read(read); err != nil {
			buf = nil
			return 0, false, err // a deadline, or closed
		}
		buf = nil
		switch {
		case again:
			return 0, true, nil
		case errno != 0:
			return 0, false, &net.OpError{Op: "read", Net: tc.LocalAddr().Network(), Source: tc.LocalAddr(),
				Addr: tc.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
		case n == 0:
			return 0, false, io.EOF
		}
		return n, false, nil
	}
}

// peekOne peeks at one byte of fd without waiting (recv with MSG_PEEK and
// MSG_DONTWAIT, no source address). It is called from the goroutine that
// waits on an idle connection, inside the runtime poller's wait: its frame
// is kept small (syscall.Recvfrom would put a whole socket address on the
// stack) so that this goroutine's stack stays within its initial 2 KiB.
func peekOne(fd uintptr, b *[1]byte) (int, syscall.Errno) {
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}

// peekError is the error a Read would have returned for the error a peek
// consumed (kept out of the waiting function's frame).
//
//go:noinline
func peekError(c net.Conn, errno syscall.Errno) error {
	return &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(),
		Err: os.NewSyscallError("read", errno)}
}
