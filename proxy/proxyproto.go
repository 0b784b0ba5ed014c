package proxy

import (
	"encoding/binary"
	"errors"
	"net"
)

// PROXY protocol v2 (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt).
//
// With Server.ProxyProtocol the proxy sends, before any client data, one
// header with the PROXY command, the client's address as source and the
// proxy's listening address as destination (TCP over IPv4 or IPv6; AF_UNSPEC
// when either is not a TCP address), followed by these TLVs:
//
//	0xE0 (PP2TypeIdentity, application range): the peer's authenticated
//	     identity, UTF-8 bytes as received.
//	0x20 PP2_TYPE_SSL: client = PP2_CLIENT_SSL (0x01), verify = 0
//	     (the identity was authenticated), with sub-TLVs
//	     0x21 PP2_SUBTYPE_SSL_VERSION ("TLSv1.2"),
//	     0x22 PP2_SUBTYPE_SSL_CN (the identity again, for HAProxy-style
//	          consumers that read the client "CN"),
//	     0x23 PP2_SUBTYPE_SSL_CIPHER (the suite name, e.g.
//	          TLS_PSK_WITH_AES_128_GCM_SHA256).
const (
	PP2TypeIdentity     = 0xE0
	PP2TypeSSL          = 0x20
	PP2SubtypeSSLVer    = 0x21
	PP2SubtypeSSLCN     = 0x22
	PP2SubtypeSSLCipher = 0x23
	PP2ClientSSL        = 0x01
)

// ProxyV2Signature is the 12-byte signature that starts every v2 header.
var ProxyV2Signature = []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// ProxyInfo is what a PROXY v2 header carries.
type ProxyInfo struct {
	Src, Dst net.Addr // client and proxy addresses
	Identity string
	Version  string // e.g. "TLSv1.2"; empty: no PP2_TYPE_SSL TLV
	Cipher   string
}

var errProxyHeaderTooLong = errors.New("proxy: PROXY v2 header longer than 65535 bytes")

func appendTLV(b []byte, typ byte, v []byte) []byte {
	b = append(b, typ, byte(len(v)>>8), byte(len(v)))
	return append(b, v...)
}

// AppendProxyV2 appends the PROXY v2 header for info to b.
func AppendProxyV2(b []byte, info ProxyInfo) ([]byte, error) {
	start := len(b)
	b = append(b, ProxyV2Signature...)
	b = append(b, 0x21) // version 2, PROXY
	src, _ := info.Src.(*net.TCPAddr)
	dst, _ := info.Dst.(*net.TCPAddr)
	var famIdx int
	switch {
	case src == nil || dst == nil:
		b = append(b, 0x00, 0, 0) // AF_UNSPEC
		famIdx = -1
	case src.IP.To4() != nil && dst.IP.To4() != nil:
		b = append(b, 0x11, 0, 0) // TCP over IPv4
		b = append(b, src.IP.To4()...)
		b = append(b, dst.IP.To4()...)
	default:
		s16, d16 := src.IP.To16(), dst.IP.To16()
		if s16 == nil || d16 == nil {
			b = append(b, 0x00, 0, 0)
			famIdx = -1
			break
		}
		b = append(b, 0x21, 0, 0) // TCP over IPv6
		b = append(b, s16...)
		b = append(b, d16...)
	}
	if famIdx == 0 {
		b = binary.BigEndian.AppendUint16(b, uint16(src.Port))
		b = binary.BigEndian.AppendUint16(b, uint16(dst.Port))
	}
	if info.Identity != "" {
		if len(info.Identity) > 0xFFFF {
			return b[:start], errProxyHeaderTooLong
		}
		b = appendTLV(b, PP2TypeIdentity, []byte(info.Identity))
	}
	if info.Version != "" {
		ssl := []byte{PP2ClientSSL, 0, 0, 0, 0}
		ssl = appendTLV(ssl, PP2SubtypeSSLVer, []byte(info.Version))
		if info.Identity != "" {
			ssl = appendTLV(ssl, PP2SubtypeSSLCN, []byte(info.Identity))
		}
		if info.Cipher != "" {
			ssl = appendTLV(ssl, PP2SubtypeSSLCipher, []byte(info.Cipher))
		}
		if len(ssl) > 0xFFFF {
			return b[:start], errProxyHeaderTooLong
		}
		b = appendTLV(b, PP2TypeSSL, ssl)
	}
	n := len(b) - start - 16
	if n > 0xFFFF {
		return b[:start], errProxyHeaderTooLong
	}
	binary.BigEndian.PutUint16(b[start+14:], uint16(n))
	return b, nil
}
