package policies

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// UserDecisions lists one person's decisions newest first, across the log
// and its rotated predecessor, at most the limit asked; the user ID is
// logged beside the input, never in the document the policy saw.
func TestUserDecisions(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "decisions.jsonl")
	clock := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	e := newEngine(t, Config{DecisionLog: &buf, Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	decide := func(user string, vpn bool) {
		in := cleanLogin()
		if vpn {
			in = vpnLogin()
		}
		in.Account.UserID = user
		e.Decide(t.Context(), in)
	}
	flush := func(name string) {
		if err := os.WriteFile(name, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
	}
	decide("id-alice", false) // oldest
	decide("id-bob", false)
	decide("id-alice", true)
	decide("", false)
	flush(log + ".1")
	decide("id-alice", false)
	decide("id-bob", true)
	decide("id-alice", true) // newest
	flush(log)

	for _, line := range strings.Split(strings.TrimSpace(readAll(t, log)+readAll(t, log+".1")), "\n") {
		if strings.Contains(line, "id-alice") && strings.Count(line, "id-alice") != 1 {
			t.Fatalf("the user ID appears more than once (in the input?): %s", line)
		}
		if strings.Contains(line, `"input":{`) && strings.Contains(line[strings.Index(line, `"input":`):strings.Index(line, `"result":`)], "id-") {
			t.Fatalf("the user ID is in the logged input: %s", line)
		}
	}

	got, err := UserDecisions(t.Context(), []string{log}, "id-alice", 10)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for i, d := range got {
		if d.UserID != "id-alice" {
			t.Errorf("decision %d is about %q", i, d.UserID)
		}
		if i > 0 && !d.Time.Before(got[i-1].Time) {
			t.Errorf("decision %d (%s) is not older than decision %d (%s)", i, d.Time, i-1, got[i-1].Time)
		}
		reasons = append(reasons, d.Result.Reason)
	}
	if len(got) != 4 || reasons[0] != "ip_anonymous_vpn" || reasons[1] == "ip_anonymous_vpn" || reasons[2] != "ip_anonymous_vpn" ||
		got[0].File != log || got[3].File != log+".1" {
		t.Fatalf("alice's decisions: %d, reasons %v", len(got), reasons)
	}
	newest, err := UserDecisions(t.Context(), []string{log}, "id-alice", 3)
	if err != nil || len(newest) != 3 || !newest[2].Time.Equal(got[2].Time) {
		t.Errorf("the newest 3: %d, %v", len(newest), err)
	}
	if bob, err := UserDecisions(t.Context(), []string{log}, "id-bob", 10); err != nil || len(bob) != 2 {
		t.Errorf("bob's decisions: %d, %v", len(bob), err)
	}
	if none, err := UserDecisions(t.Context(), []string{log}, "id-al", 10); err != nil || len(none) != 0 {
		t.Errorf("a prefix of an ID matched %d decisions, %v", len(none), err)
	}
	for _, limit := range []int{0, MaxUserDecisions + 1} {
		if _, err := UserDecisions(t.Context(), []string{log}, "id-alice", limit); err == nil {
			t.Errorf("limit %d accepted", limit)
		}
	}
	if _, err := UserDecisions(t.Context(), []string{filepath.Join(dir, "missing.jsonl")}, "id-alice", 10); err == nil {
		t.Error("a missing log was not reported")
	}
}

func readAll(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
