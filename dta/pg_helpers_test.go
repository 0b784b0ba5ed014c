package dta

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/milagro-go/milagro/internal/pgtest"
)

// One PostgreSQL server per test binary run (internal/pgtest), started by
// the first test that needs it and destroyed by TestMain (stopPG); each
// test gets a database of its own.
var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
)

// stopPG is called by TestMain after the tests.
func stopPG() {
	if pgSrv != nil {
		pgSrv.Destroy()
	}
}

// pgDatabase returns the URL of a new, empty database on the package's
// PostgreSQL server (started on first use). A missing PostgreSQL is a
// failure, never a skip.
func pgDatabase(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgSrv, pgErr = pgtest.Start() })
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	url, err := pgSrv.NewDatabase(context.Background(), "dta")
	if err != nil {
		t.Fatal(err)
	}
	return url
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
