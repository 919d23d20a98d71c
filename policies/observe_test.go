package policies

import (
	"context"
	"sync"
	"testing"
	"time"
)

// recorder is an Observer keeping what it was told.
type recorder struct {
	mu       sync.Mutex
	reasons  []string
	points   []Point
	tookZero int
	reloads  []bool
}

func (r *recorder) Decided(in Input, d Decision, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.points = append(r.points, in.Point)
	r.reasons = append(r.reasons, d.Reason)
	if took <= 0 {
		r.tookZero++
	}
}

func (r *recorder) Reloaded(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reloads = append(r.reloads, ok)
}

// The observer hears every decision, with its point, reason and time, and
// every reload attempt with its outcome; an abandoned decision is not
// reported.
func TestObserver(t *testing.T) {
	dir := policyDir(t)
	var rec recorder
	e := newEngine(t, Config{Dir: dir, Observer: &rec})
	ctx := t.Context()
	e.Decide(ctx, vpnLogin())
	e.Decide(ctx, cleanLogin())
	gone, cancel := context.WithCancel(ctx)
	cancel()
	e.Decide(gone, cleanLogin())
	editFile(t, dir, "data.json", `"anonymous_vpn": true`, `"anonymous_vpn": false`)
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	editFile(t, dir, "login.rego", "decision := outcome.deny(refusal)", "decision := outcome.deny(refusal")
	if err := e.Reload(ctx); err == nil {
		t.Fatal("broken policy reloaded")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.points) != 2 || rec.points[0] != PointLogin || rec.reasons[0] != "ip_anonymous_vpn" || rec.reasons[1] == "ip_anonymous_vpn" {
		t.Errorf("decisions observed: points %v reasons %v; want two logins, the first a VPN refusal", rec.points, rec.reasons)
	}
	if rec.tookZero != 0 {
		t.Errorf("%d decisions observed without their evaluation time", rec.tookZero)
	}
	if len(rec.reloads) != 2 || !rec.reloads[0] || rec.reloads[1] {
		t.Errorf("reloads observed %v, want [true false]", rec.reloads)
	}
}
