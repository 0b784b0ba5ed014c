package proxy

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// readinessWaiter returns a function that blocks until c has data (or EOF,
// or an error) without holding a read buffer, for plain TCP sources; nil for
// anything else. It peeks one byte with MSG_DONTWAIT inside the runtime
// poller's wait loop, so deadlines and Close are honoured. An error the peek
// receives (a reset) is returned as a Read would have returned it: the peek
// consumed it, and the Read after it would see a clean EOF.
func readinessWaiter(c net.Conn) func() error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var (
		one     [1]byte
		peekErr syscall.Errno
	)
	check := func(fd uintptr) bool {
		for {
			_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if errors.Is(err, syscall.EAGAIN) {
				return false
			}
			if errno, ok := err.(syscall.Errno); ok {
				peekErr = errno
			}
			return true
		}
	}
	return func() error {
		peekErr = 0
		if err := rc.Read(check); err != nil {
			return err
		}
		if peekErr != 0 {
			return &net.OpError{Op: "read", Net: "tcp", Source: tc.LocalAddr(), Addr: tc.RemoteAddr(),
				Err: os.NewSyscallError("read", peekErr)}
		}
		return nil
	}
}
