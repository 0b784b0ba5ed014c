package mtls

// Key files: the pairing package's binary key encodings wrapped in PEM.
//
// Each kind of key has its own PEM block type (KeyTypeMasterShare, …), so a
// file says what it holds and a loader asked for one kind refuses another
// with a message naming both. A block may carry headers with non-secret
// information for people (Identity, Day); they are written by MarshalKeyPEM
// and ignored when parsing: the binary body is authoritative (it carries the
// identity and day itself).
//
// Files are written with mode 0600, never over an existing file unless
// asked (OverwriteKey). Loading refuses, like ssh, a secret that group or
// others may access (mode & 0o077 != 0): master shares, CS client keys, CS
// server secrets, P2P keys and PIN tokens. Time permits are exempt: a permit
// authenticates nothing without the key it goes with, and permits are meant
// to be handed out daily through whatever channel is convenient.

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unicode"

	"github.com/milagro-go/milagro/pairing"
)

// PEM block types of the key files, one per kind of key.
const (
	KeyTypeMasterShare    = "MILAGRO MASTER SHARE"
	KeyTypeCSClientKey    = "MILAGRO CS CLIENT KEY"
	KeyTypeCSServerSecret = "MILAGRO CS SERVER SECRET"
	KeyTypeP2PKey         = "MILAGRO P2P KEY"
	KeyTypeTimePermit     = "MILAGRO TIME PERMIT"
	KeyTypePINToken       = "MILAGRO PIN TOKEN"
)

// Errors of key files; each failure wraps one of them (use errors.Is).
var (
	// ErrKeyFile: not a well-formed key file (no or several PEM blocks, an
	// unknown block type, a body that does not decode or does not match
	// its block type).
	ErrKeyFile = errors.New("mtls: malformed key file")
	// ErrKeyKind: a well-formed key file of another kind than the one asked for.
	ErrKeyKind = errors.New("mtls: wrong kind of key file")
	// ErrKeyPermissions: a secret key file that group or others may access.
	ErrKeyPermissions = errors.New("mtls: key file accessible by group or others")
	// ErrKeyShare: one D-TA's share where a key combined from every D-TA's
	// share is needed (a share alone never authenticates).
	ErrKeyShare = errors.New("mtls: one D-TA's share, not a combined key")
)

// maxKeyFileSize bounds what a loader reads: the largest key file (a P2P
// key with a 1024-byte identity and its headers) is well under 4 KiB.
const maxKeyFileSize = 64 << 10

// KeyInfo is the non-secret description of a key.
type KeyInfo struct {
	Kind     string // PEM block type, e.g. KeyTypeCSClientKey
	Identity string // the key's identity (a CS server key's server identity; "" for the deployment-wide one and master shares)
	Day      uint64 // permit day (days since 1970-01-01 UTC); time permits only
	// Share is true for one D-TA's share (to be combined), false for a
	// combined key. DTAs are the fingerprints of the D-TAs it was issued
	// or combined from (a master share: its own).
	Share bool
	DTAs  []pairing.Fingerprint
}

// String describes the key, e.g. `MILAGRO TIME PERMIT identity="alice"
// day=2026-11-22 dtas=4417b80d1617461b,a73c5b10dbb65cf9`.
func (i KeyInfo) String() string {
	s := i.Kind
	if i.Identity != "" {
		if i.Kind == KeyTypeCSServerSecret {
			s += " server_identity=" + strconv.Quote(i.Identity)
		} else {
			s += " identity=" + strconv.Quote(i.Identity)
		}
	} else if i.Kind == KeyTypeCSServerSecret {
		s += " server_identity=(deployment-wide)"
	}
	if i.Kind == KeyTypeTimePermit {
		s += " day=" + pairing.FormatDay(i.Day)
	}
	switch {
	case i.Kind == KeyTypeMasterShare && len(i.DTAs) == 1:
		s += " fingerprint=" + i.DTAs[0].String()
	case i.Share && len(i.DTAs) == 1:
		s += " share-of-dta=" + i.DTAs[0].String()
	case len(i.DTAs) > 0:
		s += " dtas=" + pairing.FormatFingerprints(i.DTAs)
	}
	return s
}

type origin interface {
	IsShare() bool
	DTAs() []pairing.Fingerprint
}

func withOrigin(i KeyInfo, o origin) KeyInfo {
	i.Share, i.DTAs = o.IsShare(), o.DTAs()
	return i
}

// DescribeKey returns the kind, identity and day of a key of package
// pairing (a pointer to MasterShare, CSClientKey, CSServerSecret, P2PKey,
// TimePermit or PINToken).
func DescribeKey(key any) (KeyInfo, error) {
	switch k := key.(type) {
	case *pairing.MasterShare:
		if k != nil {
			return KeyInfo{Kind: KeyTypeMasterShare, DTAs: []pairing.Fingerprint{k.Fingerprint()}}, nil
		}
	case *pairing.CSClientKey:
		if k != nil {
			return withOrigin(KeyInfo{Kind: KeyTypeCSClientKey, Identity: k.ID()}, k), nil
		}
	case *pairing.CSServerSecret:
		if k != nil {
			return withOrigin(KeyInfo{Kind: KeyTypeCSServerSecret, Identity: k.ID()}, k), nil
		}
	case *pairing.P2PKey:
		if k != nil {
			return withOrigin(KeyInfo{Kind: KeyTypeP2PKey, Identity: k.ID()}, k), nil
		}
	case *pairing.TimePermit:
		if k != nil {
			return withOrigin(KeyInfo{Kind: KeyTypeTimePermit, Identity: k.ID(), Day: k.Day()}, k), nil
		}
	case *pairing.PINToken:
		if k != nil {
			return withOrigin(KeyInfo{Kind: KeyTypePINToken, Identity: k.ID()}, k), nil
		}
	}
	return KeyInfo{}, fmt.Errorf("mtls: %T is not a Milagro key", key)
}

// secretKind reports whether files of this kind must not be accessible by
// group or others.
func secretKind(kind string) bool { return kind != KeyTypeTimePermit }

// MarshalKeyPEM encodes a key of package pairing as a PEM block of its own
// type, with Identity (and, for permits, Day) headers for people to read.
func MarshalKeyPEM(key any) ([]byte, error) {
	info, err := DescribeKey(key)
	if err != nil {
		return nil, err
	}
	body, err := key.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mtls: encoding a %s: %w", info.Kind, err)
	}
	defer clear(body)
	h := map[string]string{}
	if info.Identity != "" {
		h["Identity"] = headerValue(info.Identity)
	}
	if info.Kind == KeyTypeTimePermit {
		h["Day"] = pairing.FormatDay(info.Day) + " (" + strconv.FormatUint(info.Day, 10) + ")"
	}
	return pem.EncodeToMemory(&pem.Block{Type: info.Kind, Headers: h, Bytes: body}), nil
}

// headerValue returns id as is when it is safe in a PEM header (printable,
// no surrounding blanks, not too long), else quoted.
func headerValue(id string) string {
	ok := len(id) <= 200 && id == strings.TrimSpace(id)
	for _, r := range id {
		if !unicode.IsPrint(r) || r == '"' {
			ok = false
			break
		}
	}
	if ok {
		return id
	}
	q := strconv.QuoteToASCII(id)
	if len(q) > 200 {
		q = q[:197] + "..."
	}
	return q
}

// ParseKeyPEM decodes a key file: exactly one PEM block of one of the
// KeyType* types (text before it is ignored, anything but blanks after it
// is an error), whose binary body decodes to a key of that kind. It returns
// a *pairing.MasterShare, *pairing.CSClientKey, *pairing.CSServerSecret,
// *pairing.P2PKey, *pairing.TimePermit or *pairing.PINToken. Errors wrap
// ErrKeyFile and never contain key material.
func ParseKeyPEM(data []byte) (any, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKeyFile)
	}
	defer clear(block.Bytes)
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: data after the %s block", ErrKeyFile, quoteType(block.Type))
	}
	if !knownKind(block.Type) {
		return nil, fmt.Errorf("%w: PEM block type %s is not a Milagro key", ErrKeyFile, quoteType(block.Type))
	}
	key, err := pairing.ParseKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, block.Type, err)
	}
	info, _ := DescribeKey(key)
	if info.Kind != block.Type {
		zeroize(key)
		return nil, fmt.Errorf("%w: a %s block holds a %s", ErrKeyFile, block.Type, info.Kind)
	}
	return key, nil
}

func knownKind(t string) bool {
	switch t {
	case KeyTypeMasterShare, KeyTypeCSClientKey, KeyTypeCSServerSecret,
		KeyTypeP2PKey, KeyTypeTimePermit, KeyTypePINToken:
		return true
	}
	return false
}

// quoteType quotes a PEM type from an untrusted file, bounded in length.
func quoteType(t string) string {
	if len(t) > 64 {
		t = t[:64] + "..."
	}
	return strconv.QuoteToASCII(t)
}

func zeroize(key any) {
	if z, ok := key.(interface{ Zeroize() }); ok {
		z.Zeroize()
	}
}

// LoadKey reads and decodes the key file at path (see ParseKeyPEM). It
// refuses a file that is not a regular file, and a secret one (any kind but
// a time permit) that group or others may access (ErrKeyPermissions) -
// except, as PostgreSQL does for its key, a file owned by root that its
// group may read and others may not (0440, 0640): that is how a Kubernetes
// Secret volume with defaultMode 0400 and the pod's fsGroup arrives (root
// owns it, the kubelet adds group read for fsGroup).
func LoadKey(path string) (any, error) {
	data, mode, rootOwned, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	key, err := ParseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	info, _ := DescribeKey(key)
	groupReadByRoot := rootOwned && mode&0o037 == 0
	if secretKind(info.Kind) && mode&0o077 != 0 && !groupReadByRoot && runtime.GOOS != "windows" {
		zeroize(key)
		return nil, fmt.Errorf("%w: %s holds a %s and has mode %04o; make it private: chmod 600 %s "+
			"(a root-owned file may be 0640); for a Kubernetes Secret volume, which mounts files 0644 by default, "+
			"set defaultMode: 0400 on the volume and fsGroup in the pod's securityContext",
			ErrKeyPermissions, path, info.Kind, mode.Perm(), path)
	}
	return key, nil
}

func readKeyFile(path string) ([]byte, os.FileMode, bool, error) {
	// Refuse a FIFO or device before opening it: opening a FIFO blocks until
	// a writer appears (at start-up or on a SIGHUP reload). The mode is
	// checked again on the opened file below.
	if st, err := os.Stat(path); err != nil {
		return nil, 0, false, fmt.Errorf("mtls: key file: %w", err)
	} else if !st.Mode().IsRegular() {
		return nil, 0, false, fmt.Errorf("%w: %s is not a regular file", ErrKeyFile, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, false, fmt.Errorf("mtls: key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, false, fmt.Errorf("mtls: key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, 0, false, fmt.Errorf("%w: %s is not a regular file", ErrKeyFile, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, 0, false, fmt.Errorf("mtls: key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		clear(data)
		return nil, 0, false, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyFile, path, maxKeyFileSize)
	}
	return data, st.Mode().Perm(), ownedByRoot(st), nil
}

// loadKind loads path and checks that it holds a key of kind want.
func loadKind[T any](path, want string) (T, error) {
	var zero T
	key, err := LoadKey(path)
	if err != nil {
		return zero, err
	}
	k, ok := key.(T)
	if !ok {
		info, _ := DescribeKey(key)
		zeroize(key)
		return zero, &keyKindError{path: path, got: info.Kind, want: want}
	}
	return k, nil
}

// loadCombined is loadKind for a key that must be combined from every
// D-TA's share: a single D-TA's share is refused (ErrKeyShare) with what to
// do instead.
func loadCombined[T any](path, want string) (T, error) {
	k, err := loadKind[T](path, want)
	if err != nil {
		return k, err
	}
	if info, _ := DescribeKey(k); info.Share {
		zeroize(k)
		var zero T
		return zero, fmt.Errorf("%w: %s holds the %s share of D-TA %s alone: combine the shares of every D-TA first "+
			"(mtls keys combine --out KEY SHARE-1 SHARE-2 ..., or pairing.Combine...), then load the combined key",
			ErrKeyShare, path, want, pairing.FormatFingerprints(info.DTAs))
	}
	return k, nil
}

// keyKindError is ErrKeyKind with the file and both kinds.
type keyKindError struct{ path, got, want string }

func (e *keyKindError) Error() string {
	return "mtls: file " + e.path + " holds a " + e.got + ", want a " + e.want
}

func (e *keyKindError) Is(target error) bool { return target == ErrKeyKind }

// LoadMasterShare loads a D-TA master share.
func LoadMasterShare(path string) (*pairing.MasterShare, error) {
	return loadKind[*pairing.MasterShare](path, KeyTypeMasterShare)
}

// LoadCSClientKey loads a CS client key combined from every D-TA's share
// (a single share is refused: ErrKeyShare; LoadKey reads shares).
func LoadCSClientKey(path string) (*pairing.CSClientKey, error) {
	return loadCombined[*pairing.CSClientKey](path, KeyTypeCSClientKey)
}

// LoadCSServerSecret loads a CS server key combined from every D-TA's
// share (a single share is refused: ErrKeyShare; LoadKey reads shares).
func LoadCSServerSecret(path string) (*pairing.CSServerSecret, error) {
	return loadCombined[*pairing.CSServerSecret](path, KeyTypeCSServerSecret)
}

// LoadP2PKey loads a P2P key combined from every D-TA's share (a single
// share is refused: ErrKeyShare; LoadKey reads shares).
func LoadP2PKey(path string) (*pairing.P2PKey, error) {
	return loadCombined[*pairing.P2PKey](path, KeyTypeP2PKey)
}

// LoadTimePermit loads a time permit combined from every D-TA's share (a
// single share is refused: ErrKeyShare; LoadKey reads shares).
func LoadTimePermit(path string) (*pairing.TimePermit, error) {
	return loadCombined[*pairing.TimePermit](path, KeyTypeTimePermit)
}

// LoadPINToken loads a PIN token.
func LoadPINToken(path string) (*pairing.PINToken, error) {
	return loadKind[*pairing.PINToken](path, KeyTypePINToken)
}

// WriteKey writes key (a key of package pairing) to a new file at path with
// mode 0600. It refuses to replace an existing file (the error wraps
// fs.ErrExist); see OverwriteKey.
func WriteKey(path string, key any) error {
	data, err := MarshalKeyPEM(key)
	if err != nil {
		return err
	}
	defer clear(data)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("mtls: writing key file: %w", err)
	}
	if err := writeAndClose(f, data); err != nil {
		os.Remove(path)
		return fmt.Errorf("mtls: writing key file %s: %w", path, err)
	}
	return nil
}

// OverwriteKey writes key to path with mode 0600, replacing any file there
// atomically (a temporary file in the same directory, then a rename).
func OverwriteKey(path string, key any) error {
	data, err := MarshalKeyPEM(key)
	if err != nil {
		return err
	}
	defer clear(data)
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("mtls: writing key file: %w", err)
	}
	tmp := f.Name()
	if err := writeAndClose(f, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mtls: writing key file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mtls: writing key file: %w", err)
	}
	return nil
}

// writeAndClose makes f private (whatever the umask or the temp-file
// mode), writes data, syncs and closes it.
func writeAndClose(f *os.File, data []byte) error {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
