package proxy

import "net"

// targetDialer is the dialer of a server-mode proxy's target (and of a
// client-mode proxy's mtls server). TCP keepalive stays on for a remote
// peer: it finds a peer that vanished. On loopback it would probe nothing
// - the kernel closes a dead local peer's sockets - and cost four
// setsockopt calls per connection, so it is off there.
func targetDialer(network, addr string) *net.Dialer {
	d := &net.Dialer{}
	if network == "unix" || loopbackAddr(addr) {
		d.KeepAlive = -1
	}
	return d
}

// loopbackAddr reports whether the HOST:PORT addr names a loopback address.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
