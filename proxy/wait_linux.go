package proxy

import (
	"errors"
	"net"
	"syscall"
)

// readinessWaiter returns a function that blocks until c has data (or EOF,
// or an error) without holding a read buffer, for plain TCP sources; nil for
// anything else. It peeks one byte with MSG_DONTWAIT inside the runtime
// poller's wait loop, so deadlines and Close are honoured.
func readinessWaiter(c net.Conn) func() error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var one [1]byte
	check := func(fd uintptr) bool {
		for {
			_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return !errors.Is(err, syscall.EAGAIN)
		}
	}
	return func() error { return rc.Read(check) }
}
