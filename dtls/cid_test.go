package dtls

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// natBox forwards a client's datagrams to a server from an outside port
// that can change mid-session, as a NAT's mapping does after a timeout.
type natBox struct {
	front  *net.UDPConn
	server *net.UDPAddr
	out    atomic.Pointer[net.UDPConn]
	client atomic.Pointer[net.UDPAddr]
	wg     sync.WaitGroup
}

func newNATBox(t *testing.T, server net.Addr) *natBox {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n := &natBox{front: front, server: server.(*net.UDPAddr)}
	n.rebind(t)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		buf := make([]byte, 65536)
		for {
			k, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			n.client.Store(from)
			_, _ = n.out.Load().WriteToUDP(buf[:k], n.server)
		}
	}()
	t.Cleanup(func() {
		front.Close()
		n.out.Load().Close()
		n.wg.Wait()
	})
	return n
}

// rebind moves the session to a new outside port; the old one is closed.
func (n *natBox) rebind(t *testing.T) {
	t.Helper()
	out, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if old := n.out.Swap(out); old != nil {
		old.Close()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		buf := make([]byte, 65536)
		for {
			k, _, err := out.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if c := n.client.Load(); c != nil {
				_, _ = n.front.WriteToUDP(buf[:k], c)
			}
		}
	}()
}

func (n *natBox) outside() string { return n.out.Load().LocalAddr().String() }

// TestConnectionIDSurvivesRebinding: with connection IDs (the default) a
// session goes on after the client's outside address changes; the server
// sees the new address. Without them the server cannot route the records.
func TestConnectionIDSurvivesRebinding(t *testing.T) {
	k := testKeys(t)
	for _, noCID := range []bool{false, true} {
		scfg := p2pServerCfg(k.a)
		scfg.DisableConnectionID = noCID
		l := listen(t, scfg)
		type accepted struct {
			c   *Conn
			err error
		}
		ch := make(chan accepted, 1)
		go func() {
			c, err := l.AcceptDTLS()
			if err == nil {
				err = c.Handshake()
			}
			ch <- accepted{c, err}
		}()
		nat := newNATBox(t, l.Addr())
		ccfg := p2pClientCfg(k.b, "node-a")
		ccfg.DisableConnectionID = noCID
		c, err := dial(t, nat.front.LocalAddr().String(), ccfg)
		if err != nil {
			t.Fatal(err)
		}
		a := <-ch
		if a.err != nil {
			t.Fatal(a.err)
		}
		srv := a.c
		go func() {
			buf := make([]byte, 256)
			for {
				n, err := srv.Read(buf)
				if err != nil {
					return
				}
				if _, err := srv.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
		if err := echo(c, []byte("before")); err != nil {
			t.Fatal(err)
		}
		before := srv.RemoteAddr().String()
		nat.rebind(t)
		err = echoRetry(c, []byte("after"))
		if noCID {
			if err == nil {
				t.Fatal("without connection IDs the session survived a rebinding")
			}
		} else {
			if err != nil {
				t.Fatalf("after rebinding: %v", err)
			}
			if got := srv.RemoteAddr().String(); got == before || got != nat.outside() {
				t.Fatalf("server sees %s (was %s, now %s)", got, before, nat.outside())
			}
		}
		c.Close()
		srv.Close()
	}
}

// echoRetry is echo with a few retransmissions (the first datagram from a
// new address may race the NAT's new mapping).
func echoRetry(c net.Conn, msg []byte) error {
	var err error
	buf := make([]byte, len(msg)+64)
	for range 3 {
		if _, err = c.Write(msg); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		var n int
		if n, err = c.Read(buf); err == nil {
			if string(buf[:n]) != string(msg) {
				return errors.New("echo mismatch")
			}
			return nil
		}
	}
	return err
}
