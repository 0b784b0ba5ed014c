package proxy_test

import (
	"context"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/proxy"
)

// A server-mode proxy in front of a local service, as a library: PSK
// credentials, an ACL, the identity in a PROXY v2 header, metrics and
// /healthz on a status port, SIGHUP reload and graceful SIGTERM.
func ExampleServer() {
	keys := map[string][]byte{"alice": []byte("0123456789abcdef0123456789abcdef")}
	cfg := &mtls.Config{GetServerPSK: func(id string) ([]byte, error) {
		if k, ok := keys[id]; ok {
			return k, nil
		}
		return nil, os.ErrNotExist
	}}
	spec := proxy.ACLSpec{IDs: []string{"alice"}, Files: []string{"/etc/mtls/allow"}}
	acl, err := spec.Load()
	if err != nil {
		log.Fatal(err)
	}
	m := proxy.NewMetrics()
	s := &proxy.Server{
		Target:           "127.0.0.1:8080",
		HandshakeTimeout: 10 * time.Second,
		IdleTimeout:      5 * time.Minute,
		ProxyProtocol:    true,
		Metrics:          m,
	}
	if err := s.SetConfig(cfg, acl); err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", ":8443")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		// /healthz and /metrics
		log.Println(http.ListenAndServe("127.0.0.1:9090", &proxy.StatusHandler{Target: s.Target, Metrics: m}))
	}()
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				if acl, err := spec.Load(); err == nil {
					s.SetConfig(cfg, acl) // new handshakes only
				}
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			s.Shutdown(ctx) // stop accepting, drain, then close
			cancel()
		}
	}()
	log.Println(s.Serve(context.Background(), ln))
}

// A client-mode proxy: local plaintext on 127.0.0.1 to a remote server-mode
// proxy over mtls.
func ExampleClient() {
	c := &proxy.Client{Target: "proxy.example.com:8443"}
	if err := c.SetConfig(&mtls.Config{PSKIdentity: "alice", PSK: []byte("0123456789abcdef0123456789abcdef")}); err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:15432")
	if err != nil {
		log.Fatal(err)
	}
	log.Println(c.Serve(context.Background(), ln))
}
