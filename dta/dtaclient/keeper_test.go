package dtaclient

import (
	"testing"
	"time"
)

// TestKeeperNext: the rotation interval is spread by jitter, bounded.
func TestKeeperNext(t *testing.T) {
	k, err := NewCredentialKeeper(KeeperConfig{Renewal: &Renewal{DTAs: []RenewalDTA{{}}}, Interval: 4 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		d := k.next(false)
		if d < 3*time.Hour+30*time.Minute || d >= 4*time.Hour+30*time.Minute {
			t.Fatalf("next = %v, want within 4h ± 30m", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter")
	}
	if d := k.next(true); d != 5*time.Minute {
		t.Fatalf("retry after a failure = %v, want 5m", d)
	}
}
