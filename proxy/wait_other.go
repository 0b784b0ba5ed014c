//go:build !linux

package proxy

import "net"

func readinessWaiter(net.Conn) func() error { return nil }

func nonBlockingReader(net.Conn) func([]byte) (int, bool, error) { return nil }
