package dta

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// testDTA is an in-process D-TA on a loopback port.
type testDTA struct {
	srv    *Server
	store  *Store
	master *pairing.MasterShare
	addr   string
	dir    string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startDTA(t testing.TB, now func() time.Time) *testDTA { return startDTAAhead(t, now, 1) }

func startDTAAhead(t testing.TB, now func() time.Time, ahead int) *testDTA {
	return startDTAOpts(t, now, ahead, "NORMAL")
}

func startDTASync(t testing.TB, sync string) *testDTA { return startDTAOpts(t, nil, 1, sync) }

func startDTAOpts(t testing.TB, now func() time.Time, ahead int, sync string) *testDTA {
	t.Helper()
	// Every day up to today+ahead is issued at any hour (the window of
	// contract 1.1), so that tests on real time pass at any time of day;
	// the tests of the window itself set PermitAheadHours.
	return startDTACfg(t, now, sync, ServerConfig{PermitAhead: ahead, PermitAheadHours: 24 * ahead})
}

// startDTACfg starts a D-TA with cfg (Master, Store, Logger and Now are
// filled in).
func startDTACfg(t testing.TB, now func() time.Time, sync string, cfg ServerConfig) *testDTA {
	t.Helper()
	dir := t.TempDir()
	m, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(filepath.Join(dir, "dta.db"), &StoreOptions{Now: now, Synchronous: sync})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Master, cfg.Store, cfg.Now = m, st, now
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		st.Close()
	})
	return &testDTA{srv: srv, store: st, master: m, addr: ln.Addr().String(), dir: dir}
}

func codesFor(t testing.TB, dtas []*testDTA, kind dtawire.Kind, id string) []dtaclient.DTACode {
	t.Helper()
	var out []dtaclient.DTACode
	for _, d := range dtas {
		c, err := d.store.CreateCode(kind, id, time.Hour, "test")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dtaclient.DTACode{Address: d.addr, Code: c})
	}
	return out
}

// csHandshake runs Milagro CS at the pairing level (docs/protocol.md §3) with the
// server checking the hello against now and the permit policy.
func csHandshake(key *pairing.CSClientKey, permit *pairing.TimePermit, server *pairing.CSServerSecret, now time.Time, mode pairing.PermitMode) error {
	cl, err := pairing.NewCSClient(key, permit)
	if err != nil {
		return err
	}
	sv, err := pairing.NewCSServer(server)
	if err != nil {
		return err
	}
	hello, chs, err := cl.Hello(rand.Reader, uint64(now.Unix()), server.ID())
	if err != nil {
		return err
	}
	if err := pairing.CheckHello(hello, now, pairing.DefaultClockSkew, mode); err != nil {
		return err
	}
	shs, err := sv.Accept(rand.Reader, hello)
	if err != nil {
		return err
	}
	r, pmsC, err := chs.Finish(rand.Reader, shs.W())
	if err != nil {
		return err
	}
	pmsS, err := shs.Finish(r)
	if err != nil {
		return err
	}
	if string(pmsC) != string(pmsS) {
		return errMismatchPMS
	}
	return nil
}

var errMismatchPMS = &dtaclient.APIError{Code: "pms", Message: "pre-master secrets differ"}

// metricValueOr is metricValue returning 0 for a metric not (yet) present.
func metricValueOr(reg *prometheus.Registry, name, label string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && (label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label)) {
				if g := m.GetGauge(); g != nil {
					return g.GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// metricValue reads a gauge or counter (with the given label value, if any)
// from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}
