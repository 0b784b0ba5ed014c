package dtaclient

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/dta/dtawire"
)

// KeeperConfig configures a CredentialKeeper.
type KeeperConfig struct {
	Renewal *Renewal
	// OnRenewalChange is called (under the keeper's lock) whenever the
	// secrets in Renewal changed, so the caller can save the file.
	OnRenewalChange func(*Renewal)
	Client          *ClientOptions
	// Interval between rotations (default 24 h), spread by up to a quarter
	// of it (jitter) so that a fleet does not rotate at once. After a
	// failure the keeper retries after RetryAfter (default 5 min).
	Interval, RetryAfter time.Duration
	Rand                 io.Reader // jitter; nil: crypto/rand
	Logger               *slog.Logger
	Registerer           prometheus.Registerer
	After                func(time.Duration) <-chan time.Time // nil: time.After
}

// CredentialKeeper keeps an endpoint's renewal credentials fresh without
// fetching permits: what `--renewal` means for a server or a P2P peer
// (spec: servers renew their renewal credential). Every Interval it asks
// each D-TA for a fresh renewal secret (POST /v1/renew; the D-TA retires
// the previous secret when the new one authorizes a request, at the latest
// the next rotation) and checks that every D-TA still accepts the
// credential (GET /v1/info), saving the file after each change. A D-TA that refuses (revoked identity, unknown credential)
// or cannot be reached is logged by name and counted; the credentials it
// still accepts are kept.
type CredentialKeeper struct {
	cfg KeeperConfig
	log *slog.Logger

	mu      sync.Mutex // serialises calls and guards lastErr
	lastErr error

	failTotal *prometheus.CounterVec
	okTotal   prometheus.Counter
}

// NewCredentialKeeper makes a keeper for cfg.Renewal (any kind).
func NewCredentialKeeper(cfg KeeperConfig) (*CredentialKeeper, error) {
	if cfg.Renewal == nil || len(cfg.Renewal.DTAs) == 0 {
		return nil, errors.New("dta: a credential keeper needs a renewal file")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 24 * time.Hour
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Minute
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	k := &CredentialKeeper{cfg: cfg, log: cfg.Logger}
	if k.log == nil {
		k.log = slog.Default()
	}
	k.failTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mtls_renewal_credential_failures_total",
		Help: "Failed renewal-credential checks or rotations, by D-TA fingerprint."}, []string{"dta"})
	k.okTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "mtls_renewal_credential_rotations_total",
		Help: "Rotations of the renewal credentials that succeeded at every D-TA."})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{k.failTotal, k.okTotal} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return k, nil
}

// Check asks every D-TA for /v1/info with the renewal credential (which
// also makes a pending rotated secret the current one).
func (k *CredentialKeeper) Check(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.checkLocked(ctx)
}

func (k *CredentialKeeper) checkLocked(ctx context.Context) error {
	r := k.cfg.Renewal
	errs := make([]error, len(r.DTAs))
	chg := make([]bool, len(r.DTAs))
	var wg sync.WaitGroup
	for i := range r.DTAs {
		wg.Go(func() {
			var out dtawire.InfoResponse
			chg[i], errs[i] = callRenewal(ctx, k.cfg.Client, &r.DTAs[i], http.MethodGet, "/v1/info", nil, &out)
			if errs[i] == nil && out.Fingerprint != r.DTAs[i].Fingerprint {
				errs[i] = fmt.Errorf("answered with fingerprint %s", out.Fingerprint)
			}
		})
	}
	wg.Wait()
	changed := false
	for _, c := range chg {
		changed = changed || c
	}
	if changed && k.cfg.OnRenewalChange != nil {
		k.cfg.OnRenewalChange(r)
	}
	return k.result(errs)
}

// result records the per-D-TA errors: counted, kept as the last error.
func (k *CredentialKeeper) result(errs []error) error {
	r := k.cfg.Renewal
	var me MultiError
	for i, err := range errs {
		if err != nil {
			me = append(me, &DTAError{Address: r.DTAs[i].Address, Fingerprint: r.DTAs[i].Fingerprint, Err: err})
			k.failTotal.WithLabelValues(r.DTAs[i].Fingerprint).Inc()
		}
	}
	if me != nil {
		k.lastErr = me
		return me
	}
	k.lastErr = nil
	return nil
}

// Rotate gets a fresh renewal secret from every D-TA and checks it with
// /v1/info. The file is saved after each step.
func (k *CredentialKeeper) Rotate(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.cfg.Renewal
	rerr := Rotate(ctx, k.cfg.Client, r)
	if k.cfg.OnRenewalChange != nil {
		k.cfg.OnRenewalChange(r) // the pending secrets, before they are used
	}
	cerr := k.checkLocked(ctx)
	if rerr != nil {
		var me MultiError
		if errors.As(rerr, &me) {
			for _, e := range me {
				k.failTotal.WithLabelValues(e.Fingerprint).Inc()
			}
		}
		k.lastErr = rerr
		return rerr
	}
	if cerr == nil {
		k.okTotal.Inc()
	}
	return cerr
}

// Health returns the last check's or rotation's error (nil: every D-TA
// accepted the credential).
func (k *CredentialKeeper) Health() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

// Run rotates every Interval (with jitter) until ctx ends, retrying after
// RetryAfter when a D-TA failed.
func (k *CredentialKeeper) Run(ctx context.Context) {
	wait := k.next(k.Health() != nil)
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.cfg.After(wait):
		}
		err := k.Rotate(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			k.log.Warn("renewal credential rotation failed; keeping the credentials the D-TAs still accept", "err", err)
		} else {
			k.log.Info("renewal credentials rotated", "dtas", len(k.cfg.Renewal.DTAs))
		}
		wait = k.next(err != nil)
	}
}

func (k *CredentialKeeper) next(failed bool) time.Duration {
	if failed {
		return k.cfg.RetryAfter
	}
	spread := uint64(k.cfg.Interval / 4)
	var b [8]byte
	if spread == 0 || func() bool { _, err := io.ReadFull(k.cfg.Rand, b[:]); return err != nil }() {
		return k.cfg.Interval
	}
	return k.cfg.Interval - time.Duration(spread/2) + time.Duration(binary.BigEndian.Uint64(b[:])%spread)
}

// OpenCredentialKeeper loads the renewal file at path (any kind), makes a
// keeper that saves changed secrets back to it, and checks the credential
// with every D-TA once. A failed check is returned with the keeper (which
// is usable); start Run(ctx) in a goroutine.
// saveRenewal returns the OnRenewalChange of a renewal file at path: the
// rotated secrets are written back (an error is logged; the rotation
// itself has happened at the D-TAs and stays in memory).
func saveRenewal(path string, log *slog.Logger) func(*Renewal) {
	if log == nil {
		log = slog.Default()
	}
	return func(r *Renewal) {
		if err := WriteRenewal(path, r, true); err != nil {
			log.Error("cannot save the rotated renewal secrets", "file", path, "err", err)
		}
	}
}

func OpenCredentialKeeper(ctx context.Context, path string, cfg KeeperConfig) (*CredentialKeeper, error) {
	r, err := LoadRenewal(path)
	if err != nil {
		return nil, err
	}
	cfg.Renewal = r
	cfg.OnRenewalChange = saveRenewal(path, cfg.Logger)
	k, err := NewCredentialKeeper(cfg)
	if err != nil {
		return nil, err
	}
	return k, k.Check(ctx)
}
