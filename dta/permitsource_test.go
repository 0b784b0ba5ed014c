package dta

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/pairing"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestPermitSourceThroughMidnight: a client whose clock is injected starts
// a minute before midnight with today's and tomorrow's permits, connects
// every 10 s of its time through midnight (server clock = client clock,
// permits required) with no failed handshake, and fetches the day after
// tomorrow's permit from the D-TAs on its own once the day has turned.
func TestPermitSourceThroughMidnight(t *testing.T) {
	realToday := pairing.Day(time.Now())
	// The D-TAs run on real time with permit-ahead 2, so that the
	// client's day after tomorrow (real today + 2) is in their window.
	var dtas []*testDTA
	for range 3 {
		dtas = append(dtas, startDTAAhead(t, nil, 2))
	}
	ctx := context.Background()
	e, err := Enroll(ctx, nil, codesFor(t, dtas, KindClient, "night-owl"))
	if err != nil {
		t.Fatal(err)
	}
	srvE, err := Enroll(ctx, nil, codesFor(t, dtas, KindServer, "api.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	key, server := e.Key.(*pairing.CSClientKey), srvE.Key.(*pairing.CSServerSecret)
	if len(e.Permits) != 3 { // today..today+2
		t.Fatalf("enrollment permits: %v", sortedDays(e.Permits))
	}
	clock := &fakeClock{t: time.Unix(int64(realToday+1)*86400-60, 0)} // 23:59:00 of real today
	reg := prometheus.NewRegistry()
	src, err := NewPermitSource(PermitSourceConfig{
		Renewal: e.Renewal, Now: clock.Now, Logger: quietLogger(), Registerer: reg, PermitAheadHours: 48,
		After: func(d time.Duration) <-chan time.Time { return time.After(min(d, 5*time.Millisecond)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Add(e.Permits[realToday], e.Permits[realToday+1]); err != nil {
		t.Fatal(err)
	}
	if h := src.Horizon(); h != 1 {
		t.Fatalf("horizon %d, want 1", h)
	}
	if err := src.Health(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go src.Run(runCtx)

	for i := 0; i <= 12; i++ { // 23:59:00 … 00:01:00
		now := clock.Now()
		tp, err := src.GetCSPermit(pairing.Day(now))
		if err != nil {
			t.Fatalf("%s: %v", now.UTC().Format(time.TimeOnly), err)
		}
		if err := csHandshake(key, tp, server, now, pairing.PermitsRequired); err != nil {
			t.Fatalf("handshake at %s: %v", now.UTC().Format(time.TimeOnly), err)
		}
		clock.Add(10 * time.Second)
	}
	// After midnight the source fetches the new tomorrow on its own.
	deadline := time.Now().Add(20 * time.Second)
	for src.Horizon() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if h := src.Horizon(); h != 1 {
		t.Fatalf("after midnight: horizon %d, want 1 (today and tomorrow)", h)
	}
	tp, err := src.GetCSPermit(realToday + 2)
	if err != nil || !tp.Equal(e.Permits[realToday+2]) {
		t.Fatalf("fetched permit for the new tomorrow: %v", err)
	}
	if v := metricValue(t, reg, "mtls_permit_horizon_days", ""); v != 1 {
		t.Fatalf("horizon gauge %v", v)
	}
	if _, err := src.GetCSPermit(realToday - 5); !errors.Is(err, ErrNoPermit) {
		t.Fatalf("old day: %v", err)
	}
}

// TestPermitSourceFailure: with a D-TA failing, the source keeps its
// permits, counts the failure per D-TA, backs off, and reports degraded
// when tomorrow's permit is still missing an hour before midnight.
func TestPermitSourceFailure(t *testing.T) {
	today := uint64(20000)
	clock := &fakeClock{t: time.Unix(int64(today)*86400+3600, 0)} // 01:00
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
	clock.Add(11 * time.Hour) // 12:00
	if err := src.Health(); err != nil {
		t.Fatalf("noon: %v", err)
	}
	clock.Add(11*time.Hour + 30*time.Minute) // 23:30
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

func mustShare(t *testing.T, m *pairing.MasterShare, d uint64) *pairing.TimePermit {
	s, err := m.IssueTimePermit("x", d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

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
