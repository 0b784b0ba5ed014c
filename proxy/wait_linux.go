package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
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
			n, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if errors.Is(err, syscall.EAGAIN) {
				return false
			}
			if errno, ok := err.(syscall.Errno); ok {
				peekErr = errno
			} else if n == 0 {
				atEOF = true
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
			return &net.OpError{Op: "read", Net: tc.LocalAddr().Network(), Source: tc.LocalAddr(), Addr: tc.RemoteAddr(),
				Err: os.NewSyscallError("read", peekErr)}
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
