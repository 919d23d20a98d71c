package policies

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// whyLog decides ins through a decision log and returns the log's lines
// and the decisions, whose DecisionIDs name the lines.
func whyLog(t *testing.T, ins ...Input) ([][]byte, []Decision) {
	t.Helper()
	var out logBuffer
	e := newEngine(t, Config{DecisionLog: &out, Now: func() time.Time { return testNow }})
	var ds []Decision
	for _, in := range ins {
		ds = append(ds, e.Decide(t.Context(), in))
	}
	lines := bytes.SplitAfter([]byte(out.String()), []byte("\n"))
	return lines[:len(lines)-1], ds
}

func writeLog(t *testing.T, name string, lines [][]byte, compress bool) {
	t.Helper()
	var b bytes.Buffer
	if compress {
		zw := gzip.NewWriter(&b)
		zw.Write(bytes.Join(lines, nil))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		b.Write(bytes.Join(lines, nil))
	}
	if err := os.WriteFile(name, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wrongPassword(failures int) Input {
	in := cleanLogin()
	in.Point = PointLoginPassword
	in.Attempt = PasswordAttempt(false)
	in.Account.ConsecutiveFailures = failures
	return in
}

// Why finds a decision in the log or in any of its rotations, plain or
// compressed, and explains it with today's policy.
func TestWhyFindsTheDecisionInEveryRotation(t *testing.T) {
	lines, ds := whyLog(t, cleanLogin(), vpnLogin(), wrongPassword(4), wrongPassword(1))
	dir := t.TempDir()
	log := filepath.Join(dir, "decisions.jsonl")
	writeLog(t, log, lines[3:], false)
	writeLog(t, log+".1", lines[2:3], false)
	writeLog(t, log+".2.gz", lines[1:2], true)
	writeLog(t, log+".3", lines[0:1], true) // compressed without .gz: read by its magic number
	e := newEngine(t, Config{})
	for i, d := range ds {
		r, err := Why(t.Context(), []string{log}, d.DecisionID, e)
		if err != nil {
			t.Fatalf("decision %d: %v", i, err)
		}
		l := r.Logged
		if l.DecisionID != d.DecisionID || l.Result.Reason != d.Reason || l.Result.Allow != d.Allow ||
			l.Result.Lock != d.Lock || l.Revision != d.Revision || !l.Time.Equal(testNow) || l.Line != 1 {
			t.Errorf("decision %d: logged %+v, decided %+v", i, l, d)
		}
		if !r.SameResult || !r.SameRevision || r.Now.Decision.Reason != d.Reason || len(r.Now.Chain) == 0 {
			t.Errorf("decision %d: %+v", i, r)
		}
	}
	r, err := Why(t.Context(), []string{log}, ds[1].DecisionID, e)
	if err != nil {
		t.Fatal(err)
	}
	if r.Logged.File != log+".2.gz" || r.Logged.Point != PointLogin || r.Logged.Input.Client.Facts.AnonymousVPN != true {
		t.Errorf("VPN login found as %+v", r.Logged)
	}
	if _, ok := stepNamed(r.Now.Chain, "data.portcullis.ip.denial"); !ok {
		t.Errorf("the VPN login's explanation has no denial: %+v", r.Now.Chain)
	}
}

// A policy that decides otherwise, at another revision, is said to.
func TestWhySaysWhenTodaysPolicyDecidesOtherwise(t *testing.T) {
	lines, ds := whyLog(t, wrongPassword(1))
	log := filepath.Join(t.TempDir(), "decisions.jsonl")
	writeLog(t, log, lines, false)
	dir := policyDir(t)
	editFile(t, dir, "data.json", `"max_consecutive_failures": 5`, `"max_consecutive_failures": 2`)
	candidate := newEngine(t, Config{Dir: dir})
	r, err := Why(t.Context(), []string{log}, ds[0].DecisionID, candidate)
	if err != nil {
		t.Fatal(err)
	}
	if r.SameResult || r.SameRevision || !r.Now.Decision.Lock || ds[0].Lock {
		t.Fatalf("report %+v", r)
	}
	if strings.Join(r.Differences, ",") != "lock,notify" {
		t.Errorf("differences %q", r.Differences)
	}
	if r.Logged.Revision == r.Now.Decision.Revision || r.Now.Decision.Revision != candidate.Revision() {
		t.Errorf("revisions logged %s, now %s", r.Logged.Revision, r.Now.Decision.Revision)
	}
}

func TestWhyErrors(t *testing.T) {
	lines, ds := whyLog(t, cleanLogin())
	dir := t.TempDir()
	log := filepath.Join(dir, "decisions.jsonl")
	// The ID inside a line too long to read, and in another field of a
	// line: neither is the decision.
	long := append([]byte(`{"decision_id":"`+ds[0].DecisionID+`","pad":"`+strings.Repeat("x", DefaultMaxReplayLine)), "\"}\n"...)
	other := []byte(`{"decision_id":"other","portcullis":{"shadow":{"live_decision_id":"` + ds[0].DecisionID + `"}}}` + "\n")
	writeLog(t, log, [][]byte{long, other, []byte("not json " + ds[0].DecisionID + "\n")}, false)
	e := newEngine(t, Config{})
	if _, err := Why(t.Context(), []string{log}, ds[0].DecisionID, e); !errors.Is(err, ErrDecisionNotFound) {
		t.Errorf("an ID only in an over-long line, another field and a broken line: %v", err)
	}
	if _, err := Why(t.Context(), []string{log}, "7b0c8e9a-3f41-4d2e-9c6a-7e1f2a3b4c5d", e); !errors.Is(err, ErrDecisionNotFound) {
		t.Errorf("unknown ID: %v", err)
	}
	if _, err := Why(t.Context(), []string{filepath.Join(dir, "none.jsonl")}, ds[0].DecisionID, e); err == nil || errors.Is(err, ErrDecisionNotFound) {
		t.Errorf("missing log: %v", err)
	}
	if _, err := Why(t.Context(), []string{log}, "", e); err == nil {
		t.Error("empty ID accepted")
	}
	if _, err := Why(t.Context(), nil, ds[0].DecisionID, e); err == nil {
		t.Error("no logs accepted")
	}
	if _, err := Why(t.Context(), []string{log}, ds[0].DecisionID, nil); err == nil {
		t.Error("no engine accepted")
	}
	// The decision's own line, but without its input: found, and refused.
	broken := bytes.Replace(lines[0], []byte(`"input":`), []byte(`"inpt":`), 1)
	writeLog(t, log, [][]byte{broken}, false)
	if _, err := Why(t.Context(), []string{log}, ds[0].DecisionID, e); err == nil || errors.Is(err, ErrDecisionNotFound) ||
		!strings.Contains(err.Error(), "no input") {
		t.Errorf("line without input: %v", err)
	}
	if err := os.WriteFile(log, []byte{0x1f, 0x8b, 1, 2, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Why(t.Context(), []string{log}, ds[0].DecisionID, e); err == nil || errors.Is(err, ErrDecisionNotFound) {
		t.Errorf("corrupt gzip: %v", err)
	}
}

// A shadow line is found by its own ID and says whose live decision it
// shadowed.
func TestWhyOnAShadowLine(t *testing.T) {
	lines, ds := whyLog(t, cleanLogin())
	shadow := bytes.Replace(lines[0], []byte(`"decision_id":"`+ds[0].DecisionID+`"`), []byte(`"decision_id":"shadow-1"`), 1)
	shadow = bytes.Replace(shadow, []byte(`"point":"login"}}`),
		[]byte(`"point":"login","shadow":{"live_decision_id":"`+ds[0].DecisionID+`","live_result":{"allow":true,"reason":"ok"}}}}`), 1)
	log := filepath.Join(t.TempDir(), "decisions.jsonl")
	writeLog(t, log, [][]byte{shadow, lines[0]}, false)
	r, err := Why(t.Context(), []string{log}, "shadow-1", newEngine(t, Config{}))
	if err != nil {
		t.Fatal(err)
	}
	if r.Logged.ShadowOf != ds[0].DecisionID || r.Logged.Line != 1 {
		t.Errorf("shadow line %+v", r.Logged)
	}
	r, err = Why(t.Context(), []string{log}, ds[0].DecisionID, newEngine(t, Config{}))
	if err != nil || r.Logged.Line != 2 || r.Logged.ShadowOf != "" {
		t.Errorf("live line %+v, %v", r, err)
	}
}
