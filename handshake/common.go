package handshake

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"

	"github.com/milagro-go/milagro/ciphersuite"
)

// Seams to the ciphersuite package (tests substitute fakes).
var (
	newClientKX     = ciphersuite.NewClientKX
	newServerKX     = ciphersuite.NewServerKX
	newRecordCipher = ciphersuite.NewRecordCipher
	clientSupports  = func(c *ciphersuite.ClientConfig, s *ciphersuite.Suite) bool { return c.Supports(s) }
	serverSupports  = func(c *ciphersuite.ServerConfig, s *ciphersuite.Suite, h *ciphersuite.ClientHelloInfo) bool {
		return c.Supports(s, h)
	}
)

// Test hooks: tests rewrite outgoing hellos to play a misbehaving peer whose
// transcript is still self-consistent. Always nil outside tests.
var (
	testHookClientHello func(*clientHelloMsg)
	testHookServerHello func(*serverHelloMsg)
)

// transcript is the running handshake hash. Messages seen before the suite
// (and so the hash) is known are buffered.
type transcript struct {
	h       hash.Hash
	pending [][]byte
}

func (t *transcript) write(msg []byte) {
	if t.h == nil {
		t.pending = append(t.pending, msg)
		return
	}
	t.h.Write(msg)
}

// start fixes the hash once the suite is known.
func (t *transcript) start(s *ciphersuite.Suite) {
	t.h = s.Hash.New()
	for _, m := range t.pending {
		t.h.Write(m)
	}
	t.pending = nil
}

func (t *transcript) sum() []byte { return t.h.Sum(nil) }

// asAlert passes an *AlertError (or a context error) through and wraps any
// other error with alert a.
func asAlert(err error, a ciphersuite.Alert, what string) error {
	if err == nil {
		return nil
	}
	var ae *ciphersuite.AlertError
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return ciphersuite.Errorf(a, "%s: %w", what, err)
}

// readMessage reads the next handshake message from rl, checking ctx first.
// Record-layer errors pass through unchanged.
// The returned slices alias the message, which the handshake keeps (the
// RecordLayer hands over a fresh copy of each message).
func readMessage(ctx context.Context, rl RecordLayer) (msg []byte, typ uint8, body []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, nil, err
	}
	msg, err = rl.ReadHandshake()
	if err != nil {
		return nil, 0, nil, err
	}
	typ, body, err = splitMessage(msg)
	if err != nil {
		return nil, 0, nil, err
	}
	return msg, typ, body, nil
}

func unexpected(got uint8, want string) error {
	return ciphersuite.Errorf(ciphersuite.AlertUnexpectedMessage,
		"received %s while waiting for %s", msgTypeName(got), want)
}

func randomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, ciphersuite.Errorf(ciphersuite.AlertInternalError, "reading randomness: %v", err)
	}
	return b, nil
}

// sessionKeys are what a full handshake derives: the master secret and the
// two record ciphers.
type sessionKeys struct {
	master       []byte
	clientCipher ciphersuite.RecordCipher
	serverCipher ciphersuite.RecordCipher
}

// deriveKeys derives the master secret (EMS or classic), zeroizes the
// pre-master secret and returns the master secret and the two record
// ciphers.
func deriveKeys(s *ciphersuite.Suite, preMaster []byte, ems bool, sessionHash, clientRandom, serverRandom []byte) (*sessionKeys, error) {
	var master []byte
	if ems {
		master = extendedMasterSecret(s, preMaster, sessionHash)
	} else {
		master = masterSecret(s, preMaster, clientRandom, serverRandom)
	}
	zeroize(preMaster)
	km := keysFromMasterSecret(s, master, clientRandom, serverRandom)
	defer km.zero()
	cc, err := newRecordCipher(s, km.clientKey, km.clientIV)
	if err != nil {
		return nil, asAlert(err, ciphersuite.AlertInternalError, "creating the client record cipher")
	}
	sc, err := newRecordCipher(s, km.serverKey, km.serverIV)
	if err != nil {
		return nil, asAlert(err, ciphersuite.AlertInternalError, "creating the server record cipher")
	}
	return &sessionKeys{master: master, clientCipher: cc, serverCipher: sc}, nil
}

// writeKeyLog writes an NSS key-log line; failures are ignored (debugging aid).
func writeKeyLog(w io.Writer, clientRandom, master []byte) {
	if w == nil {
		return
	}
	line := make([]byte, 0, len("CLIENT_RANDOM ")+2*len(clientRandom)+1+2*len(master)+1)
	line = append(line, "CLIENT_RANDOM "...)
	line = hex.AppendEncode(line, clientRandom)
	line = append(line, ' ')
	line = hex.AppendEncode(line, master)
	line = append(line, '\n')
	_, _ = w.Write(line)
	zeroize(line)
}

// checkFinished checks the peer's message read where its Finished is due:
// the type, the body, and its verify_data against the transcript so far
// (label is the peer's: "client finished" or "server finished"). It
// returns the verified verify_data.
func checkFinished(s *ciphersuite.Suite, master []byte, tr *transcript, typ uint8, body []byte, label, peer string) ([]byte, error) {
	if typ != typeFinished {
		return nil, unexpected(typ, "the "+peer+"'s Finished")
	}
	got, err := parseFinished(body)
	if err != nil {
		return nil, err
	}
	if err := verifyFinished(got, finishedVerifyData(s, master, label, tr.sum()), peer); err != nil {
		return nil, err
	}
	return got, nil
}

// sendFinished is checkFinished's other half: it queues ChangeCipherSpec
// (the write side switches to next) and this side's Finished over the
// transcript so far (label is ours), adds that Finished to the transcript
// when the peer's Finished is still to come (more), and flushes the
// flight. It returns the verify_data sent.
func sendFinished(rl RecordLayer, s *ciphersuite.Suite, master []byte, tr *transcript, next ciphersuite.RecordCipher, label string, more bool) ([]byte, error) {
	if err := rl.WriteChangeCipherSpec(next); err != nil {
		return nil, err
	}
	verify := finishedVerifyData(s, master, label, tr.sum())
	fin := marshalMessage(typeFinished, verify)
	if more {
		tr.write(fin)
	}
	if err := rl.WriteHandshake(fin); err != nil {
		return nil, err
	}
	if err := rl.Flush(); err != nil {
		return nil, err
	}
	return verify, nil
}

// verifyFinished compares the peer's verify_data in constant time.
func verifyFinished(got, want []byte, peer string) error {
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ciphersuite.Errorf(ciphersuite.AlertDecryptError,
			"%s Finished does not verify (different keys: wrong pre-shared key or credentials, or a tampered handshake)", peer)
	}
	return nil
}

func isECDHE(s *ciphersuite.Suite) bool { return s.KX == ciphersuite.KXECDHEPSK }

func containsUint8(list []uint8, v uint8) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
