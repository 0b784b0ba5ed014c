package dtaclient

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/internal/admission"
	"github.com/milagro-go/milagro/pairing"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestPermitSourceFailure: with a D-TA failing, the source keeps its
// permits, counts the failure per D-TA, backs off, and reports degraded
// when tomorrow's permit is still missing an hour before midnight.
func TestPermitSourceFailure(t *testing.T) {
	today := uint64(20000)
	clock := admission.NewFakeClock(time.Unix(int64(today)*86400+3600, 0)) // 01:00
	fp := "00112233445566ff"
	var calls int
	var mu sync.Mutex
	fetch := func(ctx context.Context, days []uint64) (map[uint64]*pairing.TimePermit, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil, MultiError{{Address: "127.0.0.1:1", Fingerprint: fp, Err: errors.New("connection refused")}}
	}
	reg := prometheus.NewRegistry()
	src, err := NewPermitSource(PermitSourceConfig{Fetch: fetch, Now: clock.Now, Logger: quietLogger(), Registerer: reg, MinBackoff: time.Second, MaxBackoff: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Health(); err == nil {
		t.Fatal("no permit for today but healthy")
	}
	if err := src.Refresh(context.Background()); err == nil {
		t.Fatal("refresh with a failing D-TA succeeded")
	}
	if v := metricValue(t, reg, "mtls_permit_renewal_failures_total", fp); v != 1 {
		t.Fatalf("failures for %s: %v", fp, v)
	}
	// Backoff grows and stays bounded.
	w1 := src.nextWait(clock.Now(), true)
	for range 6 {
		src.Refresh(context.Background())
	}
	w2 := src.nextWait(clock.Now(), true)
	if w1 > time.Second || w2 < 4*time.Second || w2 > 8*time.Second {
		t.Fatalf("backoff %v then %v", w1, w2)
	}
	if _, err := src.GetCSPermit(today); !errors.Is(err, ErrNoPermit) {
		t.Fatalf("GetCSPermit: %v", err)
	}
	// With today's permit: healthy at noon, degraded at 23:30 without
	// tomorrow's, healthy again once it is there.
	m, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	permit := func(d uint64) *pairing.TimePermit {
		s, err := m.IssueTimePermit("x", d)
		if err != nil {
			t.Fatal(err)
		}
		p, err := pairing.CombineTimePermits(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := src.Add(permit(today)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Hour) // 12:00
	if err := src.Health(); err != nil {
		t.Fatalf("noon: %v", err)
	}
	clock.Advance(11*time.Hour + 30*time.Minute) // 23:30
	if err := src.Health(); err == nil || !strings.Contains(err.Error(), "tomorrow") || !strings.Contains(err.Error(), fp) {
		t.Fatalf("23:30 without tomorrow's permit: %v", err)
	}
	src.Add(permit(today + 1))
	if err := src.Health(); err != nil {
		t.Fatalf("23:30 with tomorrow's permit: %v", err)
	}
	if err := src.Add(mustShare(t, m, today+2)); err == nil {
		t.Fatal("a share was accepted as a combined permit")
	}
}

// TestPermitSourceWaitsForWindow: a permit source asks for tomorrow's
// permit only once the D-TAs issue it, and plans its next fetch then.
func TestPermitSourceWaitsForWindow(t *testing.T) {
	day := uint64(20500)
	clock := admission.NewFakeClock(time.Unix(int64(day)*86400, 0).UTC().Add(12 * time.Hour))
	var asked [][]uint64
	fetch := func(ctx context.Context, days []uint64) (map[uint64]*pairing.TimePermit, error) {
		asked = append(asked, days)
		return nil, &APIError{Status: http.StatusBadRequest, Code: dtawire.CodeDayOutOfRange}
	}
	src, err := NewPermitSource(PermitSourceConfig{Fetch: fetch, Now: clock.Now, Logger: quietLogger(), MaxJitter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	src.Refresh(context.Background())
	if len(asked) != 1 || len(asked[0]) != 1 || asked[0][0] != day {
		t.Fatalf("at 12:00 the source asked for %v, want today only", asked)
	}
	src.mu.Lock()
	src.failures = 0
	src.mu.Unlock()
	if w := src.nextWait(clock.Now(), false); w < 6*time.Hour || w > 6*time.Hour+time.Minute {
		t.Fatalf("at 12:00 with everything due held, next fetch in %v, want 18:00 + jitter", w)
	}
	clock.Advance(6 * time.Hour)
	src.Refresh(context.Background())
	if last := asked[len(asked)-1]; len(last) != 2 || last[1] != day+1 {
		t.Fatalf("at 18:00 the source asked for %v, want today and tomorrow", last)
	}
}

func mustShare(t *testing.T, m *pairing.MasterShare, d uint64) *pairing.TimePermit {
	s, err := m.IssueTimePermit("x", d)
	if err != nil {
		t.Fatal(err)
	}
	return s
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
