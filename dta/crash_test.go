package dta

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// TestCrashSafety kills `ta serve` with SIGKILL in the middle of a burst of
// enrollments and permit requests, restarts it on the same store and checks
// that every share a client received is in the audit log, that no code was
// redeemed twice and that the store is intact.
func TestCrashSafety(t *testing.T) {
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	p := d.serve(t, "--synchronous", "FULL")

	// The operator creates codes while the service runs.
	st, err := OpenStore(d.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	var codes []*dtawire.EnrollCode
	for i := range 120 {
		c, err := st.CreateCode(dtawire.KindClient, fmt.Sprintf("user%d", i), time.Hour, "test")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
	}
	pc, err := st.CreateCode(dtawire.KindClient, "permit-user", time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	e, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: p.addr, Code: pc}})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	got := map[string]int{} // code id → shares received
	var permitsOK atomic.Int64
	var next atomic.Int64
	var enrolled atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	opt := &dtaclient.ClientOptions{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)-1) / 2 // every code is tried twice
				if i >= len(codes) {
					return
				}
				c := codes[i]
				if _, err := dtaclient.Enroll(ctx, opt, []dtaclient.DTACode{{Address: p.addr, Code: c}}); err == nil {
					mu.Lock()
					got[c.ID.String()]++
					mu.Unlock()
					enrolled.Add(1)
				}
			}
		})
	}
	today := pairing.Day(time.Now())
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, _, err := dtaclient.FetchPermits(ctx, opt, e.Renewal, []uint64{today}); err == nil {
					permitsOK.Add(1)
				}
			}
		})
	}
	// Kill in the middle of the burst.
	deadline := time.Now().Add(30 * time.Second)
	for enrolled.Load() < 15 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.cmd.Process.Kill() // SIGKILL
	<-p.done
	cancel()
	wg.Wait()
	if enrolled.Load() == 0 || permitsOK.Load() == 0 {
		t.Fatalf("the burst did nothing before the kill: %d enrollments, %d permit fetches", enrolled.Load(), permitsOK.Load())
	}
	t.Logf("before SIGKILL: %d enrollments, %d permit fetches answered", enrolled.Load(), permitsOK.Load())

	// Restart on the same store: it opens cleanly and serves.
	p2 := d.serve(t)
	if _, err := dtaclient.Info(context.Background(), nil, p2.addr, &e.Renewal.DTAs[0]); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	p2.term(t)

	st, err = OpenStore(d.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.IntegrityCheck(); err != nil {
		t.Fatal(err)
	}
	log, err := st.AuditLog(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	okByCode := map[string]int{}
	permitRows := 0
	for _, a := range log {
		switch {
		case a.Action == "enroll" && a.Result == "ok":
			id := strings.TrimPrefix(strings.SplitN(a.Detail, ";", 2)[0], "code ")
			okByCode[id]++
		case a.Action == "permits" && a.Result == "ok" && a.Identity == "permit-user":
			permitRows++
		}
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("code %s gave a share %d times", id, n)
		}
		if okByCode[id] != 1 {
			t.Errorf("code %s: the client got a share but the audit log has %d issuances", id, okByCode[id])
		}
	}
	for id, n := range okByCode {
		if n != 1 {
			t.Errorf("code %s issued %d times in the audit log", id, n)
		}
	}
	if int64(permitRows) < permitsOK.Load() {
		t.Errorf("%d permit fetches answered, only %d audited", permitsOK.Load(), permitRows)
	}
	_, cs, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		used := c.UsedAt != nil
		if used != (okByCode[c.ID] == 1) && c.Identity != "permit-user" {
			t.Errorf("code %s: used=%v but %d audited issuances", c.ID, used, okByCode[c.ID])
		}
	}
}
