package dta

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests   *prometheus.CounterVec
	issued     *prometheus.CounterVec
	hsFailures *prometheus.CounterVec
	slowed     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtls_dta_requests_total", Help: "API requests by endpoint and result (ok or the error code).",
		}, []string{"endpoint", "result"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtls_dta_issued_total", Help: "Shares and permit shares issued.",
		}, []string{"what"}),
		hsFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtls_dta_handshake_failures_total", Help: "Failed TLS handshakes by alert (unknown_psk_identity, bad_record_mac, …).",
		}, []string{"reason"}),
		slowed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtls_dta_slowed_connections_total", Help: "Connections refused at accept (held, then closed) because their source (IPv4 address or IPv6 /64) spent its budget of failed handshakes.",
		}),
	}
	reg.MustRegister(m.requests, m.issued, m.hsFailures, m.slowed)
	return m
}
