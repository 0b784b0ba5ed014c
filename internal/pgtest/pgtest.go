// Package pgtest starts a throw-away PostgreSQL server for tests and
// demos: initdb into a temporary directory, the server listening only on a
// UNIX socket in that directory, everything deleted by Destroy.
//
// PostgreSQL refuses to run as root; when the caller is root the server
// runs as the system user "mtlspg" (created if missing, as
// scripts/install-peers.sh does). The binaries come from Debian's
// postgresql package (/usr/lib/postgresql/N/bin).
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// User is the system user the server runs as when the caller is root.
const User = "mtlspg"

// Server is a running PostgreSQL server.
type Server struct {
	bin, dir, data string
	asRoot         bool
	dbs            atomic.Int64
}

// BinDir finds the PostgreSQL binaries (the newest installed version).
func BinDir() (string, error) {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		return "", fmt.Errorf("pgtest: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/install-peers.sh (Debian package postgresql)")
	}
	ver := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	sort.Slice(m, func(i, j int) bool { return ver(m[i]) < ver(m[j]) })
	return filepath.Dir(m[len(m)-1]), nil
}

func (s *Server) cmd(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(s.bin, name)
	if s.asRoot {
		return exec.Command("runuser", append([]string{"-u", User, "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func (s *Server) run(name string, args ...string) error {
	out, err := s.cmd(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: %s %v: %v\n%s", name, args, err, out)
	}
	return nil
}

// Start creates and starts a server in a new temporary directory.
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, asRoot: os.Geteuid() == 0}
	if s.asRoot {
		if _, err := user.Lookup(User); err != nil {
			if out, err := exec.Command("useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", User).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("pgtest: useradd %s: %v\n%s", User, err, out)
			}
		}
	}
	if s.dir, err = os.MkdirTemp("", "mtlspg"); err != nil {
		return nil, err
	}
	s.data = filepath.Join(s.dir, "data")
	if s.asRoot {
		u, err := user.Lookup(User)
		if err != nil {
			os.RemoveAll(s.dir)
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			os.RemoveAll(s.dir)
			return nil, err
		}
	}
	if err := s.run("initdb", "-D", s.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	if err := s.Resume(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	return s, nil
}

// Resume starts the server (again, after Halt).
func (s *Server) Resume() error {
	return s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60",
		"-o", "-k "+s.dir+" -c listen_addresses= -c fsync=off -c synchronous_commit=off -c max_connections=300", "start")
}

// Halt stops the server (fast shutdown: connections are cut), keeping its
// data for Resume.
func (s *Server) Halt() error {
	return s.run("pg_ctl", "-D", s.data, "-w", "-t", "60", "-m", "fast", "stop")
}

// Destroy stops the server and deletes its directory.
func (s *Server) Destroy() {
	s.run("pg_ctl", "-D", s.data, "-w", "-t", "60", "-m", "immediate", "stop")
	os.RemoveAll(s.dir)
}

// URL is the URL of database db (no password: the socket trusts local users).
func (s *Server) URL(db string) string {
	return "postgres://postgres@/" + db + "?host=" + s.dir + "&sslmode=disable"
}

// NewDatabase creates an empty database named prefix_N and returns its URL.
func (s *Server) NewDatabase(ctx context.Context, prefix string) (string, error) {
	name := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), s.dbs.Add(1))
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// UID is the user id the server's processes run as (for CPU accounting).
func (s *Server) UID() int {
	if !s.asRoot {
		return os.Getuid()
	}
	u, err := user.Lookup(User)
	if err != nil {
		return -1
	}
	uid, _ := strconv.Atoi(u.Uid)
	return uid
}
