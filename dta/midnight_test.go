package dta

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// throughMidnight runs CS handshakes over mtls between a client whose
// permits come from a PermitSource (GetCSPermit) fed by the real D-TAs of
// renewalPath, and a server that requires permits, both on an injected
// clock that crosses midnight: no handshake may fail, and the source must
// fetch the new tomorrow's permit on its own.
//
// The injected clock runs one day behind the D-TAs' real one, so that both
// fetches (for days real−1 and real, then real+1) are within the D-TAs'
// default window [today−1, today+1].
func throughMidnight(t *testing.T, renewalPath string, key *pairing.CSClientKey, server *pairing.CSServerSecret) {
	r, err := dtaclient.LoadRenewal(renewalPath)
	if err != nil {
		t.Fatal(err)
	}
	midnight := time.Unix(int64(pairing.Day(time.Now()))*86400, 0) // the fake clock's next midnight
	var clock atomic.Int64
	set := func(tm time.Time) { clock.Store(tm.UnixNano()) }
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	set(midnight.Add(-2 * time.Minute))
	day0 := pairing.Day(now())

	reg := prometheus.NewRegistry()
	never := make(chan time.Time) // Run wakes only when kicked
	src, err := dtaclient.NewPermitSource(dtaclient.PermitSourceConfig{
		Renewal: r, Now: now, Logger: quietLogger(), Registerer: reg, MaxJitter: time.Second, PermitAheadHours: 24,
		After: func(time.Duration) <-chan time.Time { return never },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Refresh(context.Background()); err != nil {
		t.Fatalf("first fetch from the D-TAs: %v", err)
	}
	if src.Horizon() != 1 || src.Health() != nil {
		t.Fatalf("before midnight: horizon %d, health %v; want 1, nil", src.Horizon(), src.Health())
	}
	before, err := src.GetCSPermit(day0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx)

	srvCfg := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{server}, PermitMode: pairing.PermitsRequired, Time: now}
	cliCfg := &mtls.Config{CSKey: key, GetCSPermit: src.GetCSPermit, ServerIdentity: server.ID(), Time: now}
	kicked := false
	for _, off := range []time.Duration{-2 * time.Minute, -time.Minute, -31 * time.Second, -time.Second, 0,
		time.Second, 29 * time.Second, 31 * time.Second, 5 * time.Minute, time.Hour} {
		set(midnight.Add(off))
		if err := handshakeOver(t, srvCfg, cliCfg.Clone()); err != nil {
			t.Fatalf("handshake at midnight%+v (day %d): %v", off, pairing.Day(now()), err)
		}
		if off >= 0 && !kicked {
			src.Kick() // what the Run timer does just after midnight
			kicked = true
		}
	}
	// The control: a client that kept only yesterday's permit is refused
	// once the neighbour-day skew is over.
	stale := &mtls.Config{CSKey: key, CSPermits: []*pairing.TimePermit{before}, ServerIdentity: server.ID(), Time: now}
	if err := handshakeOver(t, srvCfg, stale); err == nil {
		t.Fatal("a client with only yesterday's permit was accepted an hour after midnight")
	}
	deadline := time.Now().Add(30 * time.Second)
	for src.Horizon() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if h := src.Horizon(); h != 1 {
		t.Fatalf("after midnight the source did not fetch the new tomorrow's permit: horizon %d", h)
	}
	if _, err := src.GetCSPermit(day0 + 2); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() != nil {
				got[mf.GetName()] += m.GetCounter().GetValue()
			} else if m.GetGauge() != nil {
				got[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	if got["mtls_permit_renewals_total"] != 2 || got["mtls_permit_horizon_days"] != 1 || got["mtls_permit_renewal_failures_total"] != 0 {
		t.Fatalf("metrics %v; want 2 renewals (before and after midnight), horizon 1, no failures", got)
	}
}
