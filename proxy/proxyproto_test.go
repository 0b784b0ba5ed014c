package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// ppHeader is what the test's own PROXY v2 parser (written from the spec,
// independent of AppendProxyV2) extracts.
type ppHeader struct {
	Command  byte
	Family   byte
	Src, Dst net.TCPAddr
	TLVs     map[byte][]byte
}

// readPPv2 parses one PROXY v2 header from r.
func readPPv2(r io.Reader) (*ppHeader, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, err
	}
	if string(fixed[:12]) != "\r\n\r\n\x00\r\nQUIT\n" {
		return nil, errors.New("bad signature")
	}
	if fixed[12]>>4 != 2 {
		return nil, fmt.Errorf("version %d", fixed[12]>>4)
	}
	h := &ppHeader{Command: fixed[12] & 0xF, Family: fixed[13], TLVs: map[byte][]byte{}}
	body := make([]byte, binary.BigEndian.Uint16(fixed[14:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	var alen int
	switch h.Family {
	case 0x11:
		alen = 12
		if len(body) < alen {
			return nil, errors.New("short IPv4 block")
		}
		h.Src = net.TCPAddr{IP: net.IP(body[0:4]), Port: int(binary.BigEndian.Uint16(body[8:]))}
		h.Dst = net.TCPAddr{IP: net.IP(body[4:8]), Port: int(binary.BigEndian.Uint16(body[10:]))}
	case 0x21:
		alen = 36
		if len(body) < alen {
			return nil, errors.New("short IPv6 block")
		}
		h.Src = net.TCPAddr{IP: net.IP(body[0:16]), Port: int(binary.BigEndian.Uint16(body[32:]))}
		h.Dst = net.TCPAddr{IP: net.IP(body[16:32]), Port: int(binary.BigEndian.Uint16(body[34:]))}
	case 0x00:
	default:
		return nil, fmt.Errorf("family %#x", h.Family)
	}
	tlvs := body[alen:]
	for len(tlvs) > 0 {
		if len(tlvs) < 3 {
			return nil, errors.New("truncated TLV")
		}
		n := int(binary.BigEndian.Uint16(tlvs[1:]))
		if len(tlvs) < 3+n {
			return nil, errors.New("TLV overruns header")
		}
		h.TLVs[tlvs[0]] = tlvs[3 : 3+n]
		tlvs = tlvs[3+n:]
	}
	return h, nil
}

// sslSubTLVs parses the PP2_TYPE_SSL value: client, verify, sub-TLVs.
func sslSubTLVs(v []byte) (client byte, verify uint32, sub map[byte]string, err error) {
	if len(v) < 5 {
		return 0, 0, nil, errors.New("short SSL TLV")
	}
	client, verify = v[0], binary.BigEndian.Uint32(v[1:5])
	sub = map[byte]string{}
	for v = v[5:]; len(v) > 0; {
		if len(v) < 3 {
			return 0, 0, nil, errors.New("truncated sub-TLV")
		}
		n := int(binary.BigEndian.Uint16(v[1:]))
		if len(v) < 3+n {
			return 0, 0, nil, errors.New("sub-TLV overrun")
		}
		sub[v[0]] = string(v[3 : 3+n])
		v = v[3+n:]
	}
	return client, verify, sub, nil
}

func TestProxyV2IPv4(t *testing.T) {
	src := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}
	dst := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 2), Port: 443}
	b, err := AppendProxyV2([]byte("prefix"), ProxyInfo{Src: src, Dst: dst, Identity: "alice@example.com",
		Version: "TLSv1.2", Cipher: "TLS_PSK_WITH_AES_128_GCM_SHA256"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatal("AppendProxyV2 clobbered its input")
	}
	// Known bytes of the fixed part and address block.
	want := append(append([]byte{}, ProxyV2Signature...), 0x21, 0x11)
	if !bytes.Equal(b[6:20], want) {
		t.Fatalf("fixed header % x, want % x", b[6:20], want)
	}
	if !bytes.Equal(b[22:34], []byte{192, 0, 2, 1, 198, 51, 100, 2, 0x9c, 0x40, 0x01, 0xbb}) {
		t.Fatalf("address block % x", b[22:34])
	}
	r := bytes.NewReader(append(b[6:], "DATA"...))
	h, err := readPPv2(r)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "DATA" {
		t.Fatalf("header length wrong: trailing %q", rest)
	}
	if h.Command != 1 || h.Family != 0x11 || h.Src.String() != src.String() || h.Dst.String() != dst.String() {
		t.Fatalf("parsed %+v", h)
	}
	if string(h.TLVs[PP2TypeIdentity]) != "alice@example.com" {
		t.Fatalf("identity TLV %q", h.TLVs[PP2TypeIdentity])
	}
	client, verify, sub, err := sslSubTLVs(h.TLVs[PP2TypeSSL])
	if err != nil || client != PP2ClientSSL || verify != 0 || sub[0x21] != "TLSv1.2" ||
		sub[0x22] != "alice@example.com" || sub[0x23] != "TLS_PSK_WITH_AES_128_GCM_SHA256" {
		t.Fatalf("SSL TLV: %v %v %v %q", err, client, verify, sub)
	}
}

func TestProxyV2IPv6AndUnspec(t *testing.T) {
	src := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}
	dst := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 2}
	b, err := AppendProxyV2(nil, ProxyInfo{Src: src, Dst: dst, Identity: "x"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := readPPv2(bytes.NewReader(b))
	if err != nil || h.Family != 0x21 || h.Src.String() != src.String() || h.Dst.String() != dst.String() {
		t.Fatalf("%v %+v", err, h)
	}
	if _, ok := h.TLVs[PP2TypeSSL]; ok {
		t.Error("SSL TLV without a version")
	}
	// Mixed families are sent as IPv6 (v4-mapped).
	b, _ = AppendProxyV2(nil, ProxyInfo{Src: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, Dst: dst})
	if h, err := readPPv2(bytes.NewReader(b)); err != nil || h.Family != 0x21 {
		t.Fatalf("mixed: %v %+v", err, h)
	}
	b, _ = AppendProxyV2(nil, ProxyInfo{Src: &net.UnixAddr{Name: "x"}, Dst: dst, Identity: "id"})
	if h, err := readPPv2(bytes.NewReader(b)); err != nil || h.Family != 0 || string(h.TLVs[PP2TypeIdentity]) != "id" {
		t.Fatalf("unspec: %v %+v", err, h)
	}
	if _, err := AppendProxyV2(nil, ProxyInfo{Src: src, Dst: dst, Identity: strings.Repeat("a", 70000)}); err == nil {
		t.Error("oversized identity accepted")
	}
	if _, err := AppendProxyV2(nil, ProxyInfo{Src: src, Dst: dst, Identity: strings.Repeat("a", 40000), Version: "TLSv1.2"}); err == nil {
		t.Error("header over 65535 bytes accepted")
	}
}

func FuzzProxyV2(f *testing.F) {
	f.Add("alice", "TLSv1.2", "TLS_PSK_WITH_AES_128_GCM_SHA256", []byte{127, 0, 0, 1}, uint16(1))
	f.Add("", "", "", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(65535))
	f.Fuzz(func(t *testing.T, id, ver, cipher string, ip []byte, port uint16) {
		if len(ip) != 4 && len(ip) != 16 {
			return
		}
		src := &net.TCPAddr{IP: net.IP(ip), Port: int(port)}
		dst := &net.TCPAddr{IP: net.IPv6loopback, Port: 443}
		b, err := AppendProxyV2(nil, ProxyInfo{Src: src, Dst: dst, Identity: id, Version: ver, Cipher: cipher})
		if err != nil {
			return
		}
		r := bytes.NewReader(b)
		h, err := readPPv2(r)
		if err != nil || r.Len() != 0 {
			t.Fatalf("own header does not parse: %v (%d left)", err, r.Len())
		}
		if id != "" && string(h.TLVs[PP2TypeIdentity]) != id {
			t.Fatalf("identity %q, want %q", h.TLVs[PP2TypeIdentity], id)
		}
		if h.Src.Port != int(port) || !h.Src.IP.Equal(net.IP(ip)) {
			t.Fatalf("src %v, want %v", h.Src, src)
		}
	})
}
