package admission

import (
	"net"
	"net/netip"
)

// DefaultIPv6Prefix is the prefix length that names an IPv6 source.
const DefaultIPv6Prefix = 64

// Source names a peer for the guards: an IPv4 address, or an IPv6 prefix
// (a /64 by default). The zero Source stands for a peer without an IP
// address (a pipe, a Unix socket); all such peers are one source.
type Source struct{ p netip.Prefix }

// String returns the source as an address ("192.0.2.1") or a prefix
// ("2001:db8::/64"), or "local" for the zero Source.
func (s Source) String() string {
	if !s.p.IsValid() {
		return "local"
	}
	if s.p.Addr().Is4() {
		return s.p.Addr().String()
	}
	return s.p.String()
}

// IsZero reports whether s is the zero Source.
func (s Source) IsZero() bool { return !s.p.IsValid() }

// Keyer maps peer addresses to Sources. The zero Keyer keys IPv6 by /64.
type Keyer struct {
	// IPv6Prefix is the prefix length of an IPv6 source, 1..128; 0 means
	// DefaultIPv6Prefix.
	IPv6Prefix int
}

// IP returns the Source of ip. An IPv4-mapped IPv6 address is IPv4.
func (k Keyer) IP(ip netip.Addr) Source {
	if !ip.IsValid() {
		return Source{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return Source{netip.PrefixFrom(ip, 32)}
	}
	bits := k.IPv6Prefix
	if bits <= 0 || bits > 128 {
		bits = DefaultIPv6Prefix
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return Source{}
	}
	return Source{p}
}

// Addr returns the Source of a peer address (any net.Addr whose string is
// host:port or a bare IP; others are the zero Source).
func (k Keyer) Addr(a net.Addr) Source {
	switch a := a.(type) {
	case nil:
		return Source{}
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return k.IP(ip)
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return k.IP(ip)
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return k.IP(ap.Addr())
	}
	if ip, err := netip.ParseAddr(a.String()); err == nil {
		return k.IP(ip)
	}
	return Source{}
}

// SourceOf returns the Source of a with the default Keyer.
func SourceOf(a net.Addr) Source { return Keyer{}.Addr(a) }
