package dtawire

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
	CodeRevoked       = "revoked"
	CodeCodeUsed      = "code_used"
	CodeCodeExpired   = "code_expired"
	CodeDayOutOfRange = "day_out_of_range"
	CodeWrongKind     = "wrong_kind"
	CodeBadRequest    = "bad_request"
	CodeInternal      = "internal"
)

// Bounds of the contract that both sides enforce.
const (
	// MaxBodySize bounds every request body (they are all tiny).
	MaxBodySize = 4 << 10
	// MaxResponseSize bounds every response body.
	MaxResponseSize = 64 << 10
	// MaxDaysPerRequest bounds the days of one POST /v1/permits.
	MaxDaysPerRequest = 8
	// MaxPermitAheadDays bounds how far ahead a permit can be issued.
	MaxPermitAheadDays = 7
)

// Suites are the only cipher suites the service and its clients use:
// ECDHE_PSK (forward secret, mutually authenticated by the PSK).
var Suites = []uint16{0xCCAC, 0xD001, 0xD002}

// DefaultPermitAheadHours is how long before a day starts the D-TA issues
// its permit, unless the server is configured otherwise.
//
// The revocation bound follows from it: an identity revoked before
// 24 − PermitAheadHours o'clock UTC has no permit for the next day (it was
// not issued yet), so it is refused from the next midnight; a revocation
// later in the day may come after the next day's permit was fetched, so
// any revocation takes effect within 24 h + PermitAheadHours.
const DefaultPermitAheadHours = 6

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

// DecodeStrict decodes exactly one JSON value into v, refusing unknown
// fields, trailing data and anything longer than limit bytes.
func DecodeStrict(r io.Reader, limit int64, v any) error {
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
	if err := DecodeStrict(bytes.NewReader(body), MaxBodySize, &req); err != nil {
		return nil, err
	}
	if len(req.Days) == 0 || len(req.Days) > MaxDaysPerRequest {
		return nil, fmt.Errorf("days: want 1..%d days", MaxDaysPerRequest)
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

// ShareBody returns the group elements at the end of the pairing package's
// encoding of a key share or permit share: the share body that /v1/enroll
// and /v1/permits carry (base64url), n bytes long.
func ShareBody(enc []byte, n int) string { return b64.EncodeToString(enc[len(enc)-n:]) }

// ShareSize is the size of the share body of a key share of kind.
func ShareSize(kind Kind) int {
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
	if err != nil || len(body) != ShareSize(kind) {
		return nil, fmt.Errorf("dta: share: want %d bytes of base64url", ShareSize(kind))
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

// FormatDays writes permit days as dates, for logs and the audit log.
func FormatDays(days []uint64) string {
	out := make([]byte, 0, 11*len(days))
	for i, d := range days {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, pairing.FormatDay(d)...)
	}
	return string(out)
}
