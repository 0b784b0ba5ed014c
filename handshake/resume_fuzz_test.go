package handshake

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"
)

// FuzzTicket feeds arbitrary tickets to the server's decoder: it must never
// panic, and whatever it accepts must re-encode to a ticket it accepts.
func FuzzTicket(f *testing.F) {
	k := testTicketKey(5, time.Unix(0, 0))
	st := &SessionState{Version: 0x0303, Suite: 0xD001, MasterSecret: bytes.Repeat([]byte{1}, 48), EMS: true,
		PeerIdentity: "client1", LocalIdentity: "srv", PermitDay: 1, CreatedAt: 2, Binding: bytes.Repeat([]byte{7}, 32)}
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
		PeerIdentity: "client1", LocalIdentity: "srv", PermitDay: 1, CreatedAt: 2, Binding: bytes.Repeat([]byte{7}, 32)}
	b, err := st.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte{1})
	st.PostQuantum = true
	if b, err = st.Marshal(); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
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

// detReader is a deterministic randomness source, so that a recorded
// flight replays against the same client randoms (and so verifies).
type detReader struct{ n byte }

func (r *detReader) Read(b []byte) (int, error) {
	for i := range b {
		r.n++
		b[i] = r.n
	}
	return len(b), nil
}

// resumeFuzzConfigs are deterministic PSK configurations with tickets, the
// client offering sess (nil: asking for a ticket).
func resumeFuzzConfigs(sess *ClientSession) (*ClientConfig, *ServerConfig) {
	c, s := testConfigs(pskSuites(), "hint")
	c.Rand, c.KX.Rand = &detReader{}, nil
	s.Rand, s.KX.Rand = &detReader{n: 100}, nil
	fixed := time.Unix(1763769600, 0)
	c.KX.Time, s.KX.Time = func() time.Time { return fixed }, func() time.Time { return fixed }
	k := testTicketKey(7, fixed)
	s.Tickets = &ServerTickets{Keys: func() []TicketKey { return []TicketKey{k} }}
	c.RequestTicket, c.Session = true, sess
	return c, s
}

// resumeFlights records a full handshake with a ticket and the resumed one.
func resumeFlights(tb testing.TB) (full, resumed [2][]memRecord) {
	run := func(sess *ClientSession) ([2][]memRecord, *State) {
		c, s := resumeFuzzConfigs(sess)
		var cw, sw []memRecord
		r := runPairRL(tb, c, s, func(c, s *memRL) {
			c.plaintext, s.plaintext = true, true
			c.tap, s.tap = &cw, &sw
		})
		if r.cerr != nil || r.serr != nil {
			tb.Fatalf("seed handshake: %v %v", r.cerr, r.serr)
		}
		return [2][]memRecord{cw, sw}, r.cst
	}
	full, st := run(nil)
	if st.Session == nil {
		tb.Fatal("no ticket in the seed handshake")
	}
	resumed, st2 := run(st.Session)
	if !st2.DidResume {
		tb.Fatal("seed handshake did not resume")
	}
	return full, resumed
}

// fuzzSession is the session the client fuzzer offers (from a real ticket).
func fuzzSession(tb testing.TB) *ClientSession {
	c, s := resumeFuzzConfigs(nil)
	r := runPair(tb, c, s)
	if r.cerr != nil || r.cst.Session == nil {
		tb.Fatalf("seed: %v", r.cerr)
	}
	return r.cst.Session
}

// FuzzResumeServerHandshake feeds hostile client records to a server with
// tickets (full handshakes asking for tickets, offered tickets).
func FuzzResumeServerHandshake(f *testing.F) {
	requireReal(f)
	full, resumed := resumeFlights(f)
	f.Add(encodeRecords(full[0]))
	f.Add(encodeRecords(resumed[0]))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, scfg := resumeFuzzConfigs(nil)
		crl, srl := newMemPipe()
		srl.plaintext = true
		for _, r := range decodeRecords(data) {
			crl.rawWrite(r.typ, r.data)
		}
		crl.close()
		go func() {
			for {
				if _, err := crl.rawRead(); err != nil {
					return
				}
			}
		}()
		_, _ = Server(context.Background(), srl, scfg)
		srl.close()
	})
}

// FuzzResumeClientHandshake feeds hostile server records to a client that
// offers a session (ServerHello echoing or not, NewSessionTicket, the
// abbreviated handshake's CCS and Finished).
func FuzzResumeClientHandshake(f *testing.F) {
	requireReal(f)
	full, resumed := resumeFlights(f)
	f.Add(encodeRecords(full[1]))
	f.Add(encodeRecords(resumed[1]))
	sess := fuzzSession(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ccfg, _ := resumeFuzzConfigs(sess)
		crl, srl := newMemPipe()
		crl.plaintext = true
		for _, r := range decodeRecords(data) {
			srl.rawWrite(r.typ, r.data)
		}
		srl.close()
		go func() {
			for {
				if _, err := srl.rawRead(); err != nil {
					return
				}
			}
		}()
		_, _ = Client(context.Background(), crl, ccfg)
		crl.close()
	})
}

// TestResumeFuzzSeedsReplay: the client fuzzer's resumed seed replays to a
// completed resumption, so fuzzing starts from the deep states.
func TestResumeFuzzSeedsReplay(t *testing.T) {
	requireReal(t)
	_, resumed := resumeFlights(t)
	ccfg, _ := resumeFuzzConfigs(fuzzSession(t))
	crl, srl := newMemPipe()
	crl.plaintext = true
	for _, r := range resumed[1] {
		srl.rawWrite(r.typ, r.data)
	}
	srl.close()
	go func() {
		for {
			if _, err := srl.rawRead(); err != nil {
				return
			}
		}
	}()
	st, err := Client(context.Background(), crl, ccfg)
	crl.close()
	if err != nil || !st.DidResume {
		t.Fatalf("replayed resumed flight: %v", err)
	}
}
