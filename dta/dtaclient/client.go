package dtaclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
)

// ClientOptions tunes the calls an endpoint makes to D-TAs; the zero value
// is fine.
type ClientOptions struct {
	Now     func() time.Time // TLS clock; nil: time.Now
	Rand    io.Reader        // nil: crypto/rand
	Timeout time.Duration    // per D-TA call; default 30 s
}

func (o *ClientOptions) timeout() time.Duration {
	if o == nil || o.Timeout == 0 {
		return 30 * time.Second
	}
	return o.Timeout
}

// APIError is an error answer of a D-TA ({"error","message"}).
type APIError struct {
	Status  int
	Code    string // the spec's error code: revoked, code_used, …
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
}

// IsCode reports whether err is an APIError with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// HandshakeError is a TLS handshake with a D-TA that failed: a wrong or
// unknown credential, or something that is not a D-TA.
type HandshakeError struct{ Err error }

func (e *HandshakeError) Error() string { return "TLS handshake failed: " + e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// Credential is the PSK a call authenticates with: an enrollment code
// ("enroll:<code id>" and its secret) or a renewal credential (see
// RenewalDTA.Credential).
type Credential struct {
	Identity string // the PSK identity
	PSK      []byte
	// ServerName is sent as the TLS server_name: the key id of a renewal
	// secret, which tells the D-TA which secret of a rotation is in use.
	ServerName string
}

// Call makes one request to the D-TA at addr over ECDHE_PSK TLS and decodes
// the JSON answer into out.
func Call(ctx context.Context, opt *ClientOptions, addr string, c Credential, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, opt.timeout())
	defer cancel()
	cfg := &mtls.Config{CipherSuites: dtawire.Suites, PSKIdentity: c.Identity, PSK: c.PSK, ServerName: c.ServerName}
	if opt != nil {
		cfg.Time, cfg.Rand = opt.Now, opt.Rand
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			raw, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			tc := mtls.Client(raw, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, &HandshakeError{Err: err}
			}
			return tc, nil
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 16 << 10,
		Proxy:                  nil,
	}
	defer tr.CloseIdleConnections()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://dta"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		var he *HandshakeError
		if errors.As(err, &he) {
			return he
		}
		// Not net/http's `Get "http://dta/v1/info": …`: the URL is
		// internal, the address is what the user gave.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach the D-TA at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, dtawire.MaxResponseSize+1))
	if err != nil {
		return err
	}
	if len(data) > dtawire.MaxResponseSize {
		return fmt.Errorf("answer longer than %d bytes", dtawire.MaxResponseSize)
	}
	if resp.StatusCode != http.StatusOK {
		var e dtawire.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return &APIError{Status: resp.StatusCode, Code: dtawire.CodeInternal, Message: "unparseable error answer: " + printableMsg(data)}
		}
		return &APIError{Status: resp.StatusCode, Code: e.Error, Message: printableMsg([]byte(e.Message))}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("malformed answer: %w", err)
	}
	return nil
}

// printableMsg keeps a peer's message to one short printable line.
func printableMsg(b []byte) string {
	if len(b) > 512 {
		b = b[:512]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, string(b))
}

// Info asks a D-TA for its fingerprint, version, time and policy, with an
// enrollment code's or renewal credential's PSK.
func Info(ctx context.Context, opt *ClientOptions, addr string, d *RenewalDTA) (*dtawire.InfoResponse, error) {
	var out dtawire.InfoResponse
	c, err := d.Credential(false)
	if err != nil {
		return nil, err
	}
	if err := Call(ctx, opt, addr, c, http.MethodGet, "/v1/info", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
