package mtls_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"

	"github.com/milagro-go/milagro/mtls"
)

// Responses and connections that are not mtls's have no mtls state.
func TestResponseConnectionStateOthers(t *testing.T) {
	for _, resp := range []*http.Response{nil, {}, {TLS: &tls.ConnectionState{}}, {TLS: &tls.ConnectionState{TLSUnique: []byte("not ours")}}} {
		if _, ok := mtls.ResponseConnectionState(resp); ok {
			t.Errorf("ResponseConnectionState(%+v) = ok", resp)
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := mtls.ConnectionStateOf(a); ok {
		t.Error("ConnectionStateOf(a pipe) = ok")
	}
	if _, ok := mtls.ConnectionStateOf(mtls.Client(a, &mtls.Config{})); ok {
		t.Error("ConnectionStateOf(a Conn before its handshake) = ok")
	}
}
