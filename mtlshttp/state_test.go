package mtlshttp_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/mtlshttp"
)

// Responses and connections that are not mtls's have no mtls state.
func TestResponseConnectionStateOthers(t *testing.T) {
	for _, resp := range []*http.Response{nil, {}, {TLS: &tls.ConnectionState{}}, {TLS: &tls.ConnectionState{TLSUnique: []byte("not ours")}}} {
		if _, ok := mtlshttp.ResponseConnectionState(resp); ok {
			t.Errorf("ResponseConnectionState(%+v) = ok", resp)
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := mtlshttp.ConnectionStateOf(a); ok {
		t.Error("ConnectionStateOf(a pipe) = ok")
	}
	if _, ok := mtlshttp.ConnectionStateOf(mtls.Client(a, &mtls.Config{})); ok {
		t.Error("ConnectionStateOf(a Conn before its handshake) = ok")
	}
}
