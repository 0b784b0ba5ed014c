package dta

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/milagro-go/milagro/pairing"
)

// Version is the contract version the service speaks.
const Version = "MTLS1-DTA/1"

// Error codes of the spec.
const (
	CodeRevoked        = "revoked"
	CodeCodeUsed       = "code_used"
	CodeCodeExpired    = "code_expired"
	CodeDayOutOfRange  = "day_out_of_range"
	CodeWrongKind      = "wrong_kind"
	CodeBadRequest     = "bad_request"
	CodeInternal       = "internal"
	maxBodySize        = 4 << 10 // every request body is tiny
	maxResponseSize    = 64 << 10
	maxDaysPerRequest  = 8
	maxPermitAheadDays = 7
)

// PermitJSON is one permit share on the wire.
type PermitJSON struct {
	Day   uint64 `json:"day"`
	Share string `json:"share"`
}

// EnrollResponse is the body of a successful POST /v1/enroll.
type EnrollResponse struct {
	Kind          Kind         `json:"kind"`
	Identity      string       `json:"identity"`
	Fingerprint   string       `json:"fingerprint"`
	Share         string       `json:"share"`
	RenewalSecret string       `json:"renewal_secret"`
	Permits       []PermitJSON `json:"permits,omitempty"`
}

// PermitsRequest is the body of POST /v1/permits.
type PermitsRequest struct {
	Days []uint64 `json:"days"`
}

// PermitsResponse is the body of a successful POST /v1/permits.
type PermitsResponse struct {
	Permits []PermitJSON `json:"permits"`
}

// RenewResponse is the body of a successful POST /v1/renew.
type RenewResponse struct {
	RenewalSecret string `json:"renewal_secret"`
}

// InfoResponse is the body of GET /v1/info.
type InfoResponse struct {
	Fingerprint string `json:"fingerprint"`
	Version     string `json:"version"`
	Time        string `json:"time"`
	PermitAhead int    `json:"permit_ahead"`
	// PermitAheadHours: a day's permit is issued from this many hours
	// before the day starts.
	PermitAheadHours int `json:"permit_ahead_hours"`
}

// ErrorResponse is the body of every 4xx/5xx answer.
type ErrorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields, trailing data and anything longer than limit bytes.
func decodeStrict(r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("body longer than %d bytes", limit)
	}
	if err := checkKeys(data, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// ParsePermitsRequest parses and checks a POST /v1/permits body (strict
// JSON, 1..8 distinct days).
func ParsePermitsRequest(body []byte) (*PermitsRequest, error) {
	var req PermitsRequest
	if err := decodeStrict(bytes.NewReader(body), maxBodySize, &req); err != nil {
		return nil, err
	}
	if len(req.Days) == 0 || len(req.Days) > maxDaysPerRequest {
		return nil, fmt.Errorf("days: want 1..%d days", maxDaysPerRequest)
	}
	seen := make(map[uint64]bool, len(req.Days))
	for _, d := range req.Days {
		if seen[d] {
			return nil, fmt.Errorf("days: day %d twice", d)
		}
		seen[d] = true
	}
	return &req, nil
}

var b64 = base64.RawURLEncoding

// shareBody returns the group elements at the end of a key encoding: the
// share body of the spec's /v1/enroll and /v1/permits.
func shareBody(enc []byte, n int) []byte { return enc[len(enc)-n:] }

func bodySize(kind Kind) int {
	switch kind {
	case KindServer:
		return pairing.G2Size
	case KindP2P:
		return pairing.G1Size + pairing.G2Size
	}
	return pairing.G1Size
}

// shareEncoding builds the pairing package's key-file encoding of a share
// issued by D-TA fp (revision 2: tag, version, origin flags=share,
// count=1, fingerprint, identity, [day,] elements), so that it decodes with
// every check of pairing's UnmarshalBinary.
func shareEncoding(tag byte, fp pairing.Fingerprint, id string, day *uint64, body []byte) []byte {
	b := []byte{tag, 0x02, 1, 1}
	b = append(b, fp[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	if day != nil {
		b = binary.BigEndian.AppendUint64(b, *day)
	}
	return append(b, body...)
}

// DecodeShare turns the share of an enroll response into the key share of
// its kind (*pairing.CSClientKey, *pairing.CSServerSecret or
// *pairing.P2PKey) issued by D-TA fp, checking every group element.
func DecodeShare(kind Kind, fp pairing.Fingerprint, id, share string) (any, error) {
	body, err := b64.Strict().DecodeString(share)
	if err != nil || len(body) != bodySize(kind) {
		return nil, fmt.Errorf("dta: share: want %d bytes of base64url", bodySize(kind))
	}
	if len(id) > pairing.MaxIDLen {
		return nil, fmt.Errorf("dta: share: identity too long")
	}
	var k interface{ UnmarshalBinary([]byte) error }
	var tag byte
	switch kind {
	case KindClient:
		k, tag = new(pairing.CSClientKey), 0x02
	case KindServer:
		k, tag = new(pairing.CSServerSecret), 0x03
	case KindP2P:
		k, tag = new(pairing.P2PKey), 0x06
	default:
		return nil, fmt.Errorf("dta: share: unknown kind %q", kind)
	}
	enc := shareEncoding(tag, fp, id, nil, body)
	defer clear(enc)
	if err := k.UnmarshalBinary(enc); err != nil {
		return nil, fmt.Errorf("dta: share: %w", err)
	}
	return k, nil
}

// DecodePermit turns a permit share of D-TA fp on the wire into a
// *pairing.TimePermit share.
func DecodePermit(fp pairing.Fingerprint, id string, p PermitJSON) (*pairing.TimePermit, error) {
	body, err := b64.Strict().DecodeString(p.Share)
	if err != nil || len(body) != pairing.G1Size {
		return nil, fmt.Errorf("dta: permit share: want %d bytes of base64url", pairing.G1Size)
	}
	if len(id) > pairing.MaxIDLen {
		return nil, fmt.Errorf("dta: permit share: identity too long")
	}
	day := p.Day
	enc := shareEncoding(0x04, fp, id, &day, body)
	defer clear(enc)
	var tp pairing.TimePermit
	if err := tp.UnmarshalBinary(enc); err != nil {
		return nil, fmt.Errorf("dta: permit share: %w", err)
	}
	return &tp, nil
}

// issueShare issues this D-TA's share for (kind, id) and returns the wire body.
func issueShare(m *pairing.MasterShare, kind Kind, id string) (string, error) {
	var k interface{ MarshalBinary() ([]byte, error) }
	var err error
	switch kind {
	case KindClient:
		k, err = m.IssueCSClientKey(id)
	case KindServer:
		k, err = m.IssueCSServerKey(id)
	case KindP2P:
		k, err = m.IssueP2PKey(id)
	default:
		return "", fmt.Errorf("dta: unknown kind %q", kind)
	}
	if err != nil {
		return "", err
	}
	enc, err := k.MarshalBinary()
	if err != nil {
		return "", err
	}
	defer clear(enc)
	if z, ok := k.(interface{ Zeroize() }); ok {
		defer z.Zeroize()
	}
	return b64.EncodeToString(shareBody(enc, bodySize(kind))), nil
}

// issuePermit issues this D-TA's permit share for (id, day).
func issuePermit(m *pairing.MasterShare, id string, day uint64) (PermitJSON, error) {
	p, err := m.IssueTimePermit(id, day)
	if err != nil {
		return PermitJSON{}, err
	}
	defer p.Zeroize()
	enc, err := p.MarshalBinary()
	if err != nil {
		return PermitJSON{}, err
	}
	return PermitJSON{Day: day, Share: b64.EncodeToString(shareBody(enc, pairing.G1Size))}, nil
}
