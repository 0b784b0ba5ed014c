package proxy

import (
	"net"
	"testing"
)

// The admission guards are visible in /metrics: slots in use, the tarpit,
// failures the full lockout table could not record.
func TestGuardsMetrics(t *testing.T) {
	m := NewMetrics()
	s := &Server{Target: "127.0.0.1:1", Metrics: m}
	if err := s.SetConfig(pskServerConfig(), AllowAll()); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	s.guards.Pit.Add(s.guards.Keyer.Addr(nil), b)
	s.SetConfig(pskServerConfig(), AllowAll()) // a reload registers nothing twice
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.Metric {
			switch {
			case mt.Gauge != nil:
				got[f.GetName()] = mt.Gauge.GetValue()
			case mt.Counter != nil:
				got[f.GetName()] = mt.Counter.GetValue()
			}
		}
	}
	for _, name := range []string{"mtls_proxy_handshake_slots_in_use", "mtls_proxy_tarpit_connections", "mtls_proxy_cs_lockout_unrecorded_failures_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if got["mtls_proxy_tarpit_connections"] != 1 {
		t.Errorf("tarpit %v, want 1", got["mtls_proxy_tarpit_connections"])
	}
}
