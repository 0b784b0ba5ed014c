package dta

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// One PostgreSQL server per test binary run, started by the first test that
// needs it and stopped (its directory deleted) by TestMain: initdb into a
// temporary directory as an unprivileged user (PostgreSQL refuses root),
// listening only on a UNIX socket in that directory. Each test gets a
// database of its own.

const pgUser = "mtlspg" // the system user the server runs as when tests run as root

type pgServer struct {
	bin, dir, data, sock string
	asRoot               bool
	dbs                  atomic.Int64
}

var (
	pgOnce sync.Once
	pgSrv  *pgServer
	pgErr  error
)

// pgBinDir finds Debian's PostgreSQL binaries (the newest version).
func pgBinDir() (string, error) {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		return "", fmt.Errorf("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/install-peers.sh (Debian package postgresql)")
	}
	sort.Slice(m, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m[i]))))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m[j]))))
		return a < b
	})
	return filepath.Dir(m[len(m)-1]), nil
}

func (p *pgServer) cmd(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(p.bin, name)
	if p.asRoot {
		return exec.Command("runuser", append([]string{"-u", pgUser, "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func (p *pgServer) run(name string, args ...string) error {
	out, err := p.cmd(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %v\n%s", name, args, err, out)
	}
	return nil
}

func startPG() (*pgServer, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	p := &pgServer{bin: bin, asRoot: os.Geteuid() == 0}
	if p.asRoot {
		if _, err := user.Lookup(pgUser); err != nil {
			if out, err := exec.Command("useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", pgUser).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("useradd %s: %v\n%s", pgUser, err, out)
			}
		}
	}
	if p.dir, err = os.MkdirTemp("", "mtlspg"); err != nil {
		return nil, err
	}
	p.data, p.sock = filepath.Join(p.dir, "data"), p.dir
	if p.asRoot {
		u, err := user.Lookup(pgUser)
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(p.dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := p.run("initdb", "-D", p.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"); err != nil {
		os.RemoveAll(p.dir)
		return nil, err
	}
	if err := p.start(); err != nil {
		os.RemoveAll(p.dir)
		return nil, err
	}
	return p, nil
}

func (p *pgServer) start() error {
	return p.run("pg_ctl", "-D", p.data, "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60",
		"-o", "-k "+p.sock+" -c listen_addresses= -c fsync=off -c synchronous_commit=off -c max_connections=300", "start")
}

// stopServer stops the server (fast shutdown: connections are cut).
func (p *pgServer) stopServer() error {
	return p.run("pg_ctl", "-D", p.data, "-w", "-t", "60", "-m", "fast", "stop")
}

func (p *pgServer) destroy() {
	p.run("pg_ctl", "-D", p.data, "-w", "-t", "60", "-m", "immediate", "stop")
	os.RemoveAll(p.dir)
}

func (p *pgServer) url(db string) string {
	return "postgres://postgres@/" + db + "?host=" + p.sock + "&sslmode=disable"
}

// stopPG is called by TestMain after the tests.
func stopPG() {
	if pgSrv != nil {
		pgSrv.destroy()
	}
}

// pgDatabase returns the URL of a new, empty database on the package's
// PostgreSQL server (started on first use). A missing PostgreSQL is a
// failure, never a skip.
func pgDatabase(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgSrv, pgErr = startPG() })
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	name := fmt.Sprintf("dta_%d_%d", os.Getpid(), pgSrv.dbs.Add(1))
	c, err := pgx.Connect(context.Background(), pgSrv.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return pgSrv.url(name)
}

// pgExec runs one statement on the database at url as the superuser (what a
// database administrator, or an attacker with the database, can do).
func pgExec(t testing.TB, url, q string, args ...any) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
