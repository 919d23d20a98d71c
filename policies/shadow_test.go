package policies

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestShadowCountsWhatTheCandidateWouldChange(t *testing.T) {
	var decisions logBuffer
	e := newEngine(t, Config{DecisionLog: &decisions})
	candidate := policyDir(t)
	editFile(t, candidate, "data.json", `"anonymous_vpn": true`, `"anonymous_vpn": false`)
	if err := e.SetShadow(t.Context(), &Shadow{Dir: candidate}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.SetShadow(t.Context(), nil) })
	for range 3 {
		if d := e.Decide(t.Context(), vpnLogin()); d.Reason != "ip_anonymous_vpn" {
			t.Fatalf("live decision changed: %+v", d) // the shadow never enforces
		}
		if d := e.Decide(t.Context(), cleanLogin()); !d.Allow {
			t.Fatalf("clean login: %+v", d)
		}
	}
	e.WaitShadow()
	st := e.ShadowStats()
	if st.Evaluated != 6 || st.Dropped != 0 || st.Failed != 0 || st.Revision == "" || st.Revision == e.Revision() {
		t.Fatalf("stats %+v", st)
	}
	want := ShadowDifference{Point: PointLogin, LiveReason: "ip_anonymous_vpn", ShadowReason: "ok"}
	if len(st.Differences) != 1 || st.Differences[want] != 3 {
		t.Fatalf("differences %v, want 3 × %v", st.Differences, want)
	}

	// Each difference is a marked line naming the live decision; replay
	// skips those lines and decides the six live ones again.
	var live, shadows []decisionLine
	for line := range strings.Lines(decisions.String()) {
		var l decisionLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Portcullis.Shadow != nil {
			shadows = append(shadows, l)
		} else {
			live = append(live, l)
		}
	}
	if len(live) != 6 || len(shadows) != 3 {
		t.Fatalf("%d live and %d shadow lines, want 6 and 3", len(live), len(shadows))
	}
	for _, sh := range shadows {
		if !sh.Result.Allow || sh.Portcullis.Shadow.LiveResult.Reason != "ip_anonymous_vpn" ||
			sh.Bundles.Portcullis.Revision != st.Revision || sh.DecisionID == "" ||
			!slices.ContainsFunc(live, func(l decisionLine) bool { return l.DecisionID == sh.Portcullis.Shadow.LiveDecisionID }) {
			t.Errorf("shadow line %+v", sh)
		}
	}
	r, err := Replay(t.Context(), ReplayConfig{Candidate: e, Baseline: e}, ReplaySource{Name: "log", R: strings.NewReader(decisions.String())})
	if err != nil {
		t.Fatal(err)
	}
	if r.Read != 9 || r.Shadow != 3 || r.Unchanged != 6 {
		t.Fatalf("replay %+v", r)
	}
}

func TestShadowOfTheSamePolicyFindsNothing(t *testing.T) {
	e := newEngine(t, Config{})
	if err := e.SetShadow(t.Context(), &Shadow{Dir: policyDir(t)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.SetShadow(t.Context(), nil) })
	for _, in := range []Input{cleanLogin(), vpnLogin(), fullInput(), accessInput("/transfers/new", testNow.Unix()-60), accessInput("/transfers/new", 0)} {
		e.Decide(t.Context(), in)
		e.Decide(t.Context(), in) // the access cache's hit too
	}
	e.WaitShadow()
	if st := e.ShadowStats(); st.Evaluated != 10 || len(st.Differences) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShadowTurnsOnAndOffWithoutRestart(t *testing.T) {
	e := newEngine(t, Config{})
	ctx := t.Context()
	candidate := policyDir(t)
	if err := e.SetShadow(ctx, &Shadow{Dir: candidate}); err != nil {
		t.Fatal(err)
	}
	e.Decide(ctx, vpnLogin())
	e.WaitShadow()
	if err := e.SetShadow(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.Decide(ctx, vpnLogin())
	if st := e.ShadowStats(); st.Evaluated != 1 || st.Revision != "" {
		t.Fatalf("after off: %+v", st)
	}

	// A candidate that does not compile is refused; the previous (none) stays.
	broken := policyDir(t)
	editFile(t, broken, "login.rego", "decision := outcome.deny(refusal)", "decision := outcome.deny(refusal")
	if err := e.SetShadow(ctx, &Shadow{Dir: broken}); err == nil {
		t.Fatal("broken candidate accepted")
	}
	if st := e.ShadowStats(); st.Revision != "" {
		t.Fatalf("broken candidate serving: %+v", st)
	}

	// On again; an edit is reloaded, a broken edit keeps the last good one.
	if err := e.SetShadow(ctx, &Shadow{Dir: candidate}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.SetShadow(ctx, nil) })
	first := e.ShadowStats().Revision
	editFile(t, candidate, "data.json", `"anonymous_vpn": true`, `"anonymous_vpn": false`)
	if err := e.ReloadShadow(ctx); err != nil {
		t.Fatal(err)
	}
	second := e.ShadowStats().Revision
	if second == first {
		t.Fatal("shadow not reloaded")
	}
	editFile(t, candidate, "login.rego", "decision := outcome.deny(refusal)", "decision := outcome.deny(refusal")
	if err := e.ReloadShadow(ctx); err == nil {
		t.Fatal("broken edit reloaded")
	}
	if got := e.ShadowStats().Revision; got != second {
		t.Fatalf("revision %s after a broken edit, want %s", got, second)
	}
	e.Decide(ctx, vpnLogin())
	e.WaitShadow()
	if st := e.ShadowStats(); st.Differences[ShadowDifference{PointLogin, "ip_anonymous_vpn", "ok"}] != 1 {
		t.Fatalf("after reload: %+v", st)
	}
}

func TestShadowDropsRatherThanWaits(t *testing.T) {
	defer func(n int) { shadowQueue = n }(shadowQueue)
	shadowQueue = 1
	e := newEngine(t, Config{})
	if err := e.SetShadow(t.Context(), &Shadow{Dir: policyDir(t)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.SetShadow(t.Context(), nil) })
	const n = 400
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				e.Decide(t.Context(), cleanLogin())
			}
		})
	}
	wg.Wait()
	e.WaitShadow()
	st := e.ShadowStats()
	if st.Dropped == 0 || st.Evaluated+st.Dropped != n {
		t.Fatalf("evaluated %d + dropped %d, want %d with some dropped", st.Evaluated, st.Dropped, n)
	}
}

func TestShadowUnderConcurrentDecisionsAndToggles(t *testing.T) {
	e := newEngine(t, Config{})
	ctx := t.Context()
	candidate := policyDir(t)
	stop := concurrently(4, func() bool {
		if d := e.Decide(ctx, vpnLogin()); d.Reason != "ip_anonymous_vpn" {
			t.Errorf("live decision %+v", d)
			return false
		}
		return true
	})
	for i := range 10 {
		var sh *Shadow
		if i%2 == 0 {
			sh = &Shadow{Dir: candidate}
		}
		if err := e.SetShadow(ctx, sh); err != nil {
			t.Error(err)
		}
	}
	stop()
	e.SetShadow(ctx, nil)
}
