package listen

import (
	"net"
	"syscall"
	"testing"
)

// TestKeepAliveOffOnLoopbackOnly: connections accepted on a loopback
// address have no TCP keepalive (nothing to probe there), while on any
// other address they keep Go's default keepalive.
func TestKeepAliveOffOnLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want int
	}{{"127.0.0.1:0", 0}, {":0", 1}} {
		ln, err := Listen(tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := a.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var serr error
		rc.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
		if serr != nil {
			t.Fatal(serr)
		}
		if got != tc.want {
			t.Errorf("Listen(%q): accepted connection has SO_KEEPALIVE=%d, want %d", tc.addr, got, tc.want)
		}
		a.Close()
		c.Close()
		ln.Close()
	}
}
