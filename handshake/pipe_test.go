package handshake

import (
	"errors"
	"fmt"
	"sync"

	"github.com/milagro-go/milagro/ciphersuite"
)

// Record content types used by the in-memory record layer.
const (
	recCCS       uint8 = 20
	recHandshake uint8 = 22
)

type memRecord struct {
	typ  uint8
	data []byte
}

var errPeerGone = errors.New("memrl: peer closed the pipe")

// memRL is an in-memory RecordLayer: each record carries one whole
// handshake message. After a ChangeCipherSpec, handshake messages are
// sealed/opened with the RecordCipher handed over, so a key mismatch shows
// up as a record error, exactly as on the wire.
type memRL struct {
	in      <-chan memRecord
	out     chan<- memRecord
	closeMu sync.Once
	pending *memRecord
	queue   []memRecord

	readCipher, writeCipher ciphersuite.RecordCipher
	rseq, wseq              uint64
	version                 uint16

	readCCS, wroteCCS int
	// plaintext: hand-over ciphers are recorded but not applied.
	plaintext bool
	// onWrite, if set, rewrites each outgoing handshake message (into
	// zero or more messages) before protection.
	onWrite func(msg []byte) [][]byte
	// onRead, if set, is called with the count of handshake messages read.
	onRead func(n int)
	// tap, if set, collects every record sent (as sent).
	tap   *[]memRecord
	nread int
	sent  [][]byte // plaintext handshake messages written, in order
}

func newMemPipe() (*memRL, *memRL) {
	a2b := make(chan memRecord, 64)
	b2a := make(chan memRecord, 64)
	return &memRL{in: b2a, out: a2b}, &memRL{in: a2b, out: b2a}
}

func (m *memRL) close() { m.closeMu.Do(func() { close(m.out) }) }

func (m *memRL) next() (*memRecord, error) {
	if m.pending == nil {
		r, ok := <-m.in
		if !ok {
			return nil, errPeerGone
		}
		m.pending = &r
	}
	return m.pending, nil
}

func (m *memRL) ReadHandshake() ([]byte, error) {
	r, err := m.next()
	if err != nil {
		return nil, err
	}
	if r.typ != recHandshake {
		return nil, ciphersuite.Errorf(ciphersuite.AlertUnexpectedMessage, "memrl: record type %d where a handshake message was expected", r.typ)
	}
	m.pending = nil
	m.nread++
	if m.onRead != nil {
		m.onRead(m.nread)
	}
	data := r.data
	if m.readCipher != nil && !m.plaintext {
		pt, err := m.readCipher.Open(nil, m.rseq, recHandshake, m.version, data)
		if err != nil {
			return nil, ciphersuite.Errorf(ciphersuite.AlertBadRecordMAC, "memrl: %v", err)
		}
		m.rseq++
		data = pt
	}
	return data, nil
}

func (m *memRL) WriteHandshake(msg []byte) error {
	m.sent = append(m.sent, append([]byte(nil), msg...))
	msgs := [][]byte{msg}
	if m.onWrite != nil {
		msgs = m.onWrite(msg)
	}
	for _, msg := range msgs {
		data := append([]byte(nil), msg...)
		if m.writeCipher != nil && !m.plaintext {
			data = m.writeCipher.Seal(nil, m.wseq, recHandshake, m.version, msg)
			m.wseq++
		}
		m.queue = append(m.queue, memRecord{recHandshake, data})
	}
	return nil
}

func (m *memRL) ReadChangeCipherSpec(next ciphersuite.RecordCipher) error {
	r, err := m.next()
	if err != nil {
		return err
	}
	if r.typ != recCCS || len(r.data) != 1 || r.data[0] != 1 {
		return ciphersuite.Errorf(ciphersuite.AlertUnexpectedMessage, "memrl: record type %d where ChangeCipherSpec was expected", r.typ)
	}
	m.pending = nil
	m.readCipher, m.rseq = next, 0
	m.readCCS++
	return nil
}

func (m *memRL) WriteChangeCipherSpec(next ciphersuite.RecordCipher) error {
	m.queue = append(m.queue, memRecord{recCCS, []byte{1}})
	m.writeCipher, m.wseq = next, 0
	m.wroteCCS++
	return nil
}

func (m *memRL) Flush() (err error) {
	defer func() {
		if recover() != nil { // peer closed its receiving side
			err = errPeerGone
		}
	}()
	for _, r := range m.queue {
		if m.tap != nil {
			*m.tap = append(*m.tap, r)
		}
		m.out <- r
	}
	m.queue = m.queue[:0]
	return nil
}

func (m *memRL) SetVersion(v uint16) { m.version = v }

// rawRead returns the next record's plaintext (test-side peer scripts).
func (m *memRL) rawRead() (memRecord, error) {
	r, err := m.next()
	if err != nil {
		return memRecord{}, err
	}
	m.pending = nil
	return *r, nil
}

func (m *memRL) rawWrite(typ uint8, data []byte) {
	m.out <- memRecord{typ, data}
}

func (r memRecord) String() string { return fmt.Sprintf("record(%d, %d bytes)", r.typ, len(r.data)) }
