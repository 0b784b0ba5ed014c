// Package listen opens the listeners of mtls's long-running commands from
// one address syntax:
//
//	HOST:PORT        TCP
//	unix:/path       a UNIX stream socket (a stale socket file is replaced)
//	systemd:NAME     a socket passed by systemd socket activation
//	                 (LISTEN_FDS, LISTEN_FDNAMES = the socket unit's
//	                 FileDescriptorName=, LISTEN_PID); systemd: alone takes
//	                 the only one passed
//
// Reserve wraps a listener (the status endpoint) so that it can still
// accept at the open-file limit.
package listen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Listen opens addr (see the package comment).
func Listen(addr string) (net.Listener, error) {
	switch {
	case strings.HasPrefix(addr, "systemd:"):
		return Activated(strings.TrimPrefix(addr, "systemd:"))
	case strings.HasPrefix(addr, "unix:"):
		return listenUnix(strings.TrimPrefix(addr, "unix:"))
	}
	var lc net.ListenConfig
	if loopback(addr) {
		// TCP keepalive probes nothing on loopback (a local peer that dies
		// has its sockets closed by the kernel): leave it off and save four
		// setsockopt calls per accepted connection.
		lc.KeepAlive = -1
	}
	return lc.Listen(context.Background(), "tcp", addr)
}

// loopback reports whether the TCP address addr names a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("listen: unix: needs a path")
	}
	ln, err := net.Listen("unix", path)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) {
		// A socket file left by a previous run: replace it, but only if
		// it is a socket nobody accepts on.
		if st, serr := os.Lstat(path); serr == nil && st.Mode()&os.ModeSocket != 0 {
			if c, derr := net.Dial("unix", path); derr == nil {
				c.Close()
				return nil, fmt.Errorf("listen: %s: another process is listening there", path)
			}
			if rerr := os.Remove(path); rerr == nil {
				ln, err = net.Listen("unix", path)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	// Remove the file when the listener closes.
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return ln, nil
}

// fdsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const fdsStart = 3

// passed is one socket from the service manager.
type passed struct {
	fd   int
	name string
}

// parseActivation reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES via
// getenv for the process pid. No LISTEN_FDS means nothing was passed.
func parseActivation(getenv func(string) string, pid int) ([]passed, error) {
	nfds := getenv("LISTEN_FDS")
	if nfds == "" {
		return nil, nil
	}
	if p := getenv("LISTEN_PID"); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n != pid {
			return nil, fmt.Errorf("LISTEN_PID=%s is not this process (%d)", p, pid)
		}
	}
	n, err := strconv.Atoi(nfds)
	if err != nil || n < 0 || n > 1024 {
		return nil, fmt.Errorf("invalid LISTEN_FDS %q", nfds)
	}
	var names []string
	if s := getenv("LISTEN_FDNAMES"); s != "" {
		names = strings.Split(s, ":")
		if len(names) != n {
			return nil, fmt.Errorf("LISTEN_FDNAMES has %d names for %d descriptors", len(names), n)
		}
	}
	out := make([]passed, n)
	for i := range out {
		out[i].fd = fdsStart + i
		if names != nil {
			out[i].name = names[i]
		} else {
			out[i].name = "unknown" // systemd's default name
		}
	}
	return out, nil
}

var (
	activationOnce sync.Once
	activationErr  error
	activationMu   sync.Mutex
	activationFDs  []passed // not yet taken
)

func loadActivation() {
	activationOnce.Do(func() {
		activationFDs, activationErr = parseActivation(os.Getenv, os.Getpid())
		// As sd_listen_fds(1): children must not take them for theirs.
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
		for _, p := range activationFDs {
			syscall.CloseOnExec(p.fd)
		}
	})
}

// Activated returns the listener systemd passed under name (an empty name
// takes the only one passed). Each can be taken once.
func Activated(name string) (net.Listener, error) {
	loadActivation()
	if activationErr != nil {
		return nil, fmt.Errorf("listen: systemd:%s: %w", name, activationErr)
	}
	activationMu.Lock()
	defer activationMu.Unlock()
	if len(activationFDs) == 0 {
		return nil, fmt.Errorf("listen: systemd:%s: no socket passed by the service manager (LISTEN_FDS is unset or used up; is the .socket unit active?)", name)
	}
	i := -1
	if name == "" {
		if len(activationFDs) != 1 {
			return nil, fmt.Errorf("listen: systemd: %d sockets passed; name one (FileDescriptorName=)", len(activationFDs))
		}
		i = 0
	} else {
		for j, p := range activationFDs {
			if p.name == name {
				i = j
				break
			}
		}
		if i < 0 {
			var have []string
			for _, p := range activationFDs {
				have = append(have, p.name)
			}
			return nil, fmt.Errorf("listen: systemd:%s: no such socket passed (have: %s)", name, strings.Join(have, ", "))
		}
	}
	p := activationFDs[i]
	activationFDs = append(activationFDs[:i:i], activationFDs[i+1:]...)
	f := os.NewFile(uintptr(p.fd), "systemd:"+p.name)
	defer f.Close() // FileListener dups it
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listen: systemd:%s (fd %d): %w", p.name, p.fd, err)
	}
	return ln, nil
}

// Reserve wraps ln so that it keeps accepting at the open-file limit: it
// holds one spare descriptor (/dev/null) and, when Accept fails with EMFILE
// or ENFILE, gives it up to accept the waiting connection; the spare is
// taken back when that connection closes. Meant for a low-traffic listener
// that must stay reachable under load (the /healthz endpoint), one
// connection at a time at the limit.
func Reserve(ln net.Listener) net.Listener {
	r := &reserved{Listener: ln}
	r.spare, _ = os.Open(os.DevNull)
	return r
}

type reserved struct {
	net.Listener
	mu    sync.Mutex
	spare *os.File
}

func (r *reserved) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err == nil || !(errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
		return c, err
	}
	r.mu.Lock()
	if r.spare == nil {
		r.mu.Unlock()
		return nil, err
	}
	r.spare.Close()
	r.spare = nil
	r.mu.Unlock()
	c, err = r.Listener.Accept()
	if err != nil {
		r.retake()
		return nil, err
	}
	return &reserveConn{Conn: c, r: r}, nil
}

func (r *reserved) retake() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spare == nil {
		r.spare, _ = os.Open(os.DevNull)
	}
}

func (r *reserved) Close() error {
	r.mu.Lock()
	if r.spare != nil {
		r.spare.Close()
		r.spare = nil
	}
	r.mu.Unlock()
	return r.Listener.Close()
}

type reserveConn struct {
	net.Conn
	once sync.Once
	r    *reserved
}

func (c *reserveConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.r.retake)
	return err
}
