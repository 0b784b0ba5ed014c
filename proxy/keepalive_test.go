package proxy

import "testing"

func TestTargetDialerKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		off           bool
	}{
		{"tcp", "127.0.0.1:80", true}, {"tcp", "[::1]:80", true}, {"tcp", "localhost:80", true},
		{"unix", "/run/x.sock", true},
		{"tcp", "10.0.0.1:80", false}, {"tcp", "db.example:5432", false}, {"tcp", "[2001:db8::1]:80", false},
	} {
		if got := targetDialer(tc.network, tc.addr).KeepAlive < 0; got != tc.off {
			t.Errorf("%s %s: keepalive off = %v, want %v", tc.network, tc.addr, got, tc.off)
		}
	}
}
