package handshake

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"
)

// FuzzTicket feeds arbitrary tickets to the server's decoder: it must never
// panic, and whatever it accepts must re-encode to a ticket it accepts.
func FuzzTicket(f *testing.F) {
	k := testTicketKey(5, time.Unix(0, 0))
	st := &SessionState{Version: 0x0303, Suite: 0xD001, MasterSecret: bytes.Repeat([]byte{1}, 48), EMS: true,
		PeerIdentity: "client1", LocalIdentity: "srv", PermitDay: 1, CreatedAt: 2}
	good, err := SealTicket(rand.Reader, k, st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:ticketOverhead])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _, ok := OpenTicket([]TicketKey{k}, data)
		if !ok {
			return
		}
		again, err := SealTicket(rand.Reader, k, s)
		if err != nil {
			t.Fatalf("accepted state does not re-encode: %v", err)
		}
		if _, _, ok := OpenTicket([]TicketKey{k}, again); !ok {
			t.Fatal("re-encoded ticket refused")
		}
	})
}

// FuzzSessionState fuzzes the ticket plaintext decoder directly (the AEAD
// keeps peers away from it, but a leaked key must not turn into a crash).
func FuzzSessionState(f *testing.F) {
	st := &SessionState{Version: 0x0303, Suite: 0xD001, MasterSecret: bytes.Repeat([]byte{1}, 48), EMS: true,
		PeerIdentity: "client1", LocalIdentity: "srv", PermitDay: 1, CreatedAt: 2}
	b, err := st.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSessionState(data)
		if err != nil {
			return
		}
		out, err := s.Marshal()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("accepted state does not round-trip: %v", err)
		}
	})
}

// FuzzNewSessionTicket fuzzes the client's NewSessionTicket parser.
func FuzzNewSessionTicket(f *testing.F) {
	m := &newSessionTicketMsg{lifetimeHint: 3600, ticket: bytes.Repeat([]byte{9}, 100)}
	b, err := m.marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[4:])
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseNewSessionTicket(body)
		if err != nil {
			return
		}
		out, err := m.marshal()
		if err != nil || !bytes.Equal(out[4:], body) {
			t.Fatalf("accepted NewSessionTicket does not round-trip: %v", err)
		}
	})
}
