package ciphersuite

import (
	"errors"
	"fmt"
)

// Alert is a TLS alert description (RFC 5246 §7.2 and successors).
type Alert uint8

// Alert descriptions used by this module.
const (
	AlertCloseNotify           Alert = 0
	AlertUnexpectedMessage     Alert = 10
	AlertBadRecordMAC          Alert = 20
	AlertRecordOverflow        Alert = 22
	AlertHandshakeFailure      Alert = 40
	AlertIllegalParameter      Alert = 47
	AlertAccessDenied          Alert = 49
	AlertDecodeError           Alert = 50
	AlertDecryptError          Alert = 51
	AlertProtocolVersion       Alert = 70
	AlertInsufficientSecurity  Alert = 71
	AlertInternalError         Alert = 80
	AlertInappropriateFallback Alert = 86
	AlertUserCanceled          Alert = 90
	AlertNoRenegotiation       Alert = 100
	AlertMissingExtension      Alert = 109
	AlertUnsupportedExtension  Alert = 110
	AlertUnrecognizedName      Alert = 112
	AlertUnknownPSKIdentity    Alert = 115
	AlertNoApplicationProtocol Alert = 120 // RFC 7301
)

var alertNames = map[Alert]string{
	AlertCloseNotify:           "close_notify",
	AlertUnexpectedMessage:     "unexpected_message",
	AlertBadRecordMAC:          "bad_record_mac",
	AlertRecordOverflow:        "record_overflow",
	AlertHandshakeFailure:      "handshake_failure",
	AlertIllegalParameter:      "illegal_parameter",
	AlertAccessDenied:          "access_denied",
	AlertDecodeError:           "decode_error",
	AlertDecryptError:          "decrypt_error",
	AlertProtocolVersion:       "protocol_version",
	AlertInsufficientSecurity:  "insufficient_security",
	AlertInternalError:         "internal_error",
	AlertInappropriateFallback: "inappropriate_fallback",
	AlertUserCanceled:          "user_canceled",
	AlertNoRenegotiation:       "no_renegotiation",
	AlertMissingExtension:      "missing_extension",
	AlertUnsupportedExtension:  "unsupported_extension",
	AlertUnrecognizedName:      "unrecognized_name",
	AlertUnknownPSKIdentity:    "unknown_psk_identity",
	AlertNoApplicationProtocol: "no_application_protocol",
}

func (a Alert) String() string {
	if s, ok := alertNames[a]; ok {
		return s
	}
	return fmt.Sprintf("alert(%d)", uint8(a))
}

// AlertError is a failure that ends a connection with a TLS alert. Remote is
// false when this side detected the problem and sent (or will send) the alert,
// true when the peer sent it.
type AlertError struct {
	Alert  Alert
	Remote bool
	Err    error // the cause, for a person to act on; may be nil for remote alerts
}

func (e *AlertError) Error() string {
	side := "local error"
	if e.Remote {
		side = "remote error"
	}
	if e.Err != nil {
		return fmt.Sprintf("mtls: %s: %s: %v", side, e.Alert, e.Err)
	}
	return fmt.Sprintf("mtls: %s: %s", side, e.Alert)
}

func (e *AlertError) Unwrap() error { return e.Err }

// Errorf returns a local *AlertError carrying alert a and a formatted cause.
func Errorf(a Alert, format string, args ...any) error {
	return &AlertError{Alert: a, Err: fmt.Errorf(format, args...)}
}

// AlertOf reports the alert carried by err, if any.
func AlertOf(err error) (Alert, bool) {
	var ae *AlertError
	if errors.As(err, &ae) {
		return ae.Alert, true
	}
	return 0, false
}
