package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/urfave/cli/v2"
)

// Session tickets on the server commands (mtls server, mtls proxy server):
// on by default with random keys made by this process (a new one each
// day, each accepted for 7 days, kept across SIGHUP reloads);
// --ticket-key-file shares keys across a fleet (re-read on SIGHUP by the
// proxy); --no-tickets turns them off.

func ticketFlags() []cli.Flag {
	cat := "session resumption"
	return []cli.Flag{
		&cli.StringFlag{Name: "ticket-key-file", Category: cat, Usage: "`FILE` of session ticket keys, 32 bytes each in hex or base64, one a line, newest first " +
			"(servers sharing it resume each other's sessions; the proxy re-reads it on SIGHUP); default: random keys rotated daily"},
		&cli.BoolFlag{Name: "no-tickets", Category: cat, Usage: "issue and accept no session tickets: every connection runs a full handshake"},
	}
}

// applyTicketFlags sets the server's ticket configuration from the flags.
func applyTicketFlags(c *cli.Context, cfg *mtls.Config) error {
	if c.Bool("no-tickets") {
		if c.IsSet("ticket-key-file") {
			return fmt.Errorf("--no-tickets and --ticket-key-file are exclusive")
		}
		cfg.SessionTicketsDisabled = true
		return nil
	}
	if f := c.String("ticket-key-file"); f != "" {
		keys, err := mtls.LoadTicketKeys(f)
		if err != nil {
			return fmt.Errorf("--ticket-key-file: %w", err)
		}
		cfg.TicketKeys = func() [][32]byte { return keys }
		return nil
	}
	cfg.TicketKeys = processTicketKeys.keys
	return nil
}

// processTicketKeys are this process's automatic ticket keys, shared by
// every configuration it makes (so a reload keeps sessions resumable).
var processTicketKeys = &ticketKeyRotation{rand: rand.Reader, now: time.Now}

type ticketKeyRotation struct {
	rand io.Reader
	now  func() time.Time

	mu      sync.Mutex
	current [][32]byte
	made    []time.Time
}

func (r *ticketKeyRotation) keys() [][32]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if len(r.made) > 0 && now.Sub(r.made[0]) < 24*time.Hour && !now.Before(r.made[0]) {
		return r.current
	}
	var k [32]byte
	if _, err := io.ReadFull(r.rand, k[:]); err != nil {
		return r.current // keep the old keys (none: no tickets) rather than fail handshakes
	}
	keys, made := [][32]byte{k}, []time.Time{now}
	for i, t := range r.made {
		if age := now.Sub(t); age >= 0 && age < 7*24*time.Hour {
			keys, made = append(keys, r.current[i]), append(made, t)
		}
	}
	r.current, r.made = keys, made
	return keys
}
