package mtls

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/milagro-go/milagro/handshake"
)

// Automatic ticket keys: a new key each day; a key is accepted for 7 days.
func TestTicketKeyRotationWindow(t *testing.T) {
	t0 := time.Unix(1763769600, 0)
	now := t0
	c := &Config{Time: func() time.Time { return now }}
	keys, err := c.ticketKeys()
	if err != nil || len(keys) != 1 {
		t.Fatal(len(keys), err)
	}
	st := &handshake.SessionState{Version: 0x0303, Suite: 0x00A8, MasterSecret: bytes.Repeat([]byte{1}, 48), EMS: true}
	ticket, err := handshake.SealTicket(rand.Reader, keys[0], st)
	if err != nil {
		t.Fatal(err)
	}
	for day := 1; day <= 8; day++ {
		now = t0.Add(time.Duration(day)*24*time.Hour + time.Second)
		keys, err = c.ticketKeys()
		if err != nil {
			t.Fatal(err)
		}
		_, idx, ok := handshake.OpenTicket(keys, ticket)
		if want := day < 7; ok != want {
			t.Fatalf("day %d: ticket accepted %v, want %v (%d keys)", day, ok, want, len(keys))
		}
		if ok && idx != day {
			t.Fatalf("day %d: opened with key %d", day, idx)
		}
		if n := min(day+1, 7); len(keys) != n {
			t.Fatalf("day %d: %d keys, want %d", day, len(keys), n)
		}
	}
	// Within a day, the same keys.
	k1, _ := c.ticketKeys()
	now = now.Add(time.Hour)
	k2, _ := c.ticketKeys()
	if k1[0].Name() != k2[0].Name() {
		t.Fatal("rotated within a day")
	}
	// Keys set by the application win; Clones share them.
	c.SetSessionTicketKeys([][32]byte{{1}})
	cl := c.Clone()
	ks, _ := cl.ticketKeys()
	if len(ks) != 1 || ks[0].Name() != handshake.NewTicketKey([32]byte{1}, now).Name() {
		t.Fatal("SetSessionTicketKeys not used by a Clone")
	}
}
