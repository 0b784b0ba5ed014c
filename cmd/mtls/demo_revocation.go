package main

// The demo's revocation claim, checked on an injected clock: an in-process
// D-TA (package dta) whose clock the demo sets, so that "revoked before
// 18:00 UTC, refused from the next midnight" is shown, not just said.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/dta"
	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

func (d *demo) revocationOnClock() error {
	day := pairing.Day(time.Now())
	start := time.Unix(int64(day)*86400, 0).UTC()
	at := func(h, m int) time.Time { return start.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	var clock atomic.Int64
	set := func(t time.Time) { clock.Store(t.UnixNano()) }
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	set(at(12, 0))

	m, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		return err
	}
	defer m.Zeroize()
	st, err := dta.OpenStore(filepath.Join(d.dir, "clock-dta.db"), &dta.StoreOptions{Now: now, Synchronous: "NORMAL"})
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := dta.NewServer(dta.ServerConfig{Master: m, Store: st, Now: now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	ctx := d.ctx
	opt := &dtaclient.ClientOptions{Now: now}
	enroll := func(kind dtawire.Kind, id string) (*dtaclient.Enrollment, error) {
		c, err := st.CreateCode(kind, id, time.Hour, "demo")
		if err != nil {
			return nil, err
		}
		return dtaclient.Enroll(ctx, opt, []dtaclient.DTACode{{Address: ln.Addr().String(), Code: c}})
	}
	server, err := enroll(dtawire.KindServer, demoServer)
	if err != nil {
		return err
	}
	alice, err := enroll(dtawire.KindClient, demoAlice)
	if err != nil {
		return err
	}
	d.say("    %s 12:00 UTC: alice enrolls and gets permits for %v only (tomorrow's is issued from 18:00).",
		pairing.FormatDay(day), demoPermitDays(alice.Permits))
	d.check(len(alice.Permits) == 1 && alice.Permits[day] != nil, "no permit for tomorrow before 18:00",
		fmt.Sprintf("enrollment at 12:00 returned permits for %v", demoPermitDays(alice.Permits)))
	set(at(17, 59))
	if err := st.Revoke(dtawire.KindClient, demoAlice, "laptop lost", "demo"); err != nil {
		return err
	}
	set(at(18, 0))
	_, _, err = dtaclient.FetchPermits(ctx, opt, alice.Renewal, []uint64{day + 1})
	d.say("    17:59: revoked. 18:00: her fetch of tomorrow's permit: %v", err)
	d.check(dtaclient.IsCode(err, dtawire.CodeRevoked), "tomorrow's permit refused: revoked", "tomorrow's permit was not refused after the revocation")
	key := alice.Key.(*pairing.CSClientKey)
	srvKey := server.Key.(*pairing.CSServerSecret)
	errDay := demoHandshake(key, alice.Permits[day], srvKey, at(17, 59))
	errNext := demoHandshake(key, alice.Permits[day], srvKey, at(24+1, 0))
	d.check(errDay == nil && errNext != nil,
		"with only today's permit she connects until midnight and is refused from the next day on (checked at 01:00)",
		fmt.Sprintf("handshakes with today's permit: at 17:59 %v, the next day at 01:00 %v", errDay, errNext))
	return nil
}

func demoPermitDays(m map[uint64]*pairing.TimePermit) []string {
	var out []string
	for d := range m {
		out = append(out, pairing.FormatDay(d))
	}
	return out
}

// demoHandshake runs the Milagro CS key exchange at the pairing level
// with the server checking the hello at now, permits required.
func demoHandshake(key *pairing.CSClientKey, permit *pairing.TimePermit, server *pairing.CSServerSecret, now time.Time) error {
	cl, err := pairing.NewCSClient(key, permit)
	if err != nil {
		return err
	}
	sv, err := pairing.NewCSServer(server)
	if err != nil {
		return err
	}
	hello, chs, err := cl.Hello(rand.Reader, uint64(now.Unix()), server.ID())
	if err != nil {
		return err
	}
	if err := pairing.CheckHello(hello, now, pairing.DefaultClockSkew, pairing.PermitsRequired); err != nil {
		return err
	}
	shs, err := sv.Accept(rand.Reader, hello)
	if err != nil {
		return err
	}
	r, pmsC, err := chs.Finish(rand.Reader, shs.W())
	if err != nil {
		return err
	}
	pmsS, err := shs.Finish(r)
	if err != nil {
		return err
	}
	if string(pmsC) != string(pmsS) {
		return fmt.Errorf("pre-master secrets differ")
	}
	return nil
}
