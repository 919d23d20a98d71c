package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/plugins/compose"
	"github.com/portcullis/portcullis/policies"
)

// replayLogLines is how many decisions recordReplayLog makes.
const replayLogLines = 3000

// loggedInputs is what recordReplayLog decided, for the tests to count the
// decisions a candidate should change.
type loggedInputs struct {
	files []string // oldest first
	ins   []policies.Input
	ds    []policies.Decision
}

// recordReplayLog makes replayLogLines decisions with the built-in
// policies through the decision log writer the server uses, rotating
// small files, from varied inputs of the kinds the gateway logs: logins
// from clean and anonymizer networks, throttled addresses, right and wrong
// passwords at every failure count, unknown and locked accounts, code
// sends to mobile and VoIP phones, and proxied requests.
func recordReplayLog(t *testing.T) loggedInputs {
	t.Helper()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	engine, dlog, err := compose.NewPolicyEngine(t.Context(), config.Policies{DecisionLog: path,
		DecisionLogMaxSize: "512KiB", DecisionLogMaxFiles: 100}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC).Unix()
	var rec loggedInputs
	for i := range replayLogLines {
		in := replayInput(rng, start+int64(i)*17)
		rec.ins = append(rec.ins, in)
		rec.ds = append(rec.ds, engine.Decide(t.Context(), in))
	}
	dlog.Close()
	rotated, err := filepath.Glob(path + ".*")
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) < 2 {
		t.Fatalf("%d rotated files: the log did not rotate", len(rotated))
	}
	for i := len(rotated); i >= 1; i-- {
		rec.files = append(rec.files, fmt.Sprintf("%s.%d", path, i))
	}
	rec.files = append(rec.files, path)
	return rec
}

func replayInput(rng *rand.Rand, now int64) policies.Input {
	in := policies.Input{
		Now:    now,
		Client: policies.Client{IP: fmt.Sprintf("198.51.100.%d", 1+rng.IntN(250)), Facts: policies.IPFacts{Checked: true, Country: "US"}},
		Account: policies.Account{
			Exists:        true,
			SecondFactors: []string{"sms", "voice", "totp"}[:1+rng.IntN(3)],
			SecurityPhone: &policies.PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: "mobile", Source: "prefix", Masked: "+1 202 555 0167"},
			EmailOnFile:   rng.IntN(2) == 0,
			Products:      []string{"savings"},
		},
		Request: policies.Request{Host: "login.example.com", Path: "/.portcullis/api/v1/login", Method: "POST"},
	}
	if rng.IntN(2) == 0 {
		in.Device = policies.Device{Recognised: true, RegisteredAt: now - int64(rng.IntN(90))*86400}
	}
	switch r := rng.IntN(100); {
	case r < 35:
		in.Point = policies.PointLogin
		in.Client.RecentFailures = rng.IntN(8)
		if rng.IntN(10) == 0 {
			in.Client.RecentFailures = 18 + rng.IntN(6) // around the throttle
		}
		switch rng.IntN(8) {
		case 0:
			in.Client.Facts = policies.IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}
		case 1:
			in.Client.Facts = policies.IPFacts{Checked: true, HostingProvider: true, Country: "DE"}
		case 2:
			in.Client.Facts = policies.IPFacts{Checked: true, Anonymous: true, TorExitNode: true}
		case 3:
			in.Client.Facts = policies.IPFacts{Checked: true, ResidentialProxy: true}
		}
	case r < 80:
		in.Point = policies.PointLoginPassword
		in.Account.ConsecutiveFailures = rng.IntN(6)
		in.Account.Exists = rng.IntN(10) != 0
		in.Account.Locked = in.Account.Exists && rng.IntN(20) == 0
		if !in.Account.Exists {
			in.Account = policies.Account{}
		}
		in.Attempt = policies.PasswordAttempt(rng.IntN(2) == 0)
	case r < 90:
		in.Point = policies.PointSendCode
		phone := *in.Account.SecurityPhone
		if rng.IntN(5) == 0 {
			phone.LineType = "voip"
		}
		in.Code = &policies.Code{Purpose: "login", Channel: []string{"sms", "voice"}[rng.IntN(2)], Phone: phone,
			Resends: rng.IntN(4), Sends: policies.SendCounts{User: rng.IntN(6), Number: rng.IntN(6), Address: rng.IntN(10), CallingCode: rng.IntN(100)}}
	default:
		in.Point = policies.PointAccess
		in.Request = policies.Request{Route: "savings", Host: "savings.example.com",
			Path: []string{"/", "/accounts", "/transfers/new", "/statements/2025-12"}[rng.IntN(4)], Method: "GET"}
		in.Session = &policies.Session{Methods: []string{"password", "sms"}, AuthTime: now - int64(rng.IntN(3600)),
			StepUpAt: now - int64(rng.IntN(1800)), LastSeen: now - int64(rng.IntN(1200)), Created: now - int64(rng.IntN(3600))}
	}
	return in
}

// candidateDir copies the built-in policies to a directory and applies
// edit to its data.json.
func candidateDir(t *testing.T, edit func(cfg map[string]any)) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../rego")); err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return dir
	}
	path := filepath.Join(dir, "data.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]map[string]map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	edit(data["portcullis"]["config"])
	raw, err = json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// replay runs `portcullis policy replay --format json` and returns the
// report and the exit status main would give.
func replay(t *testing.T, rec loggedInputs, args ...string) (*policies.ReplayReport, int) {
	t.Helper()
	for _, f := range rec.files {
		args = append(args, "--log", f)
	}
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"policy", "replay", "--format", "json"}, args...), nil, &stdout, &stderr)
	status := 0
	if xe, ok := errors.AsType[*exitError](err); ok {
		status = xe.status
	} else if err != nil {
		t.Fatalf("policy replay: %v\n%s", err, stderr.String())
	}
	var r policies.ReplayReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	if r.Read != replayLogLines || r.Unparseable != 0 || r.BaselineMismatches != 0 || r.Unchanged+r.Changed != r.Read {
		t.Fatalf("totals %+v; want %d lines read, every one parsed and decided by the baseline as logged", r, replayLogLines)
	}
	return &r, status
}

func TestPolicyReplay(t *testing.T) {
	rec := recordReplayLog(t)

	t.Run("the same policy changes nothing", func(t *testing.T) {
		r, status := replay(t, rec, "--dir", candidateDir(t, nil))
		if status != 0 || r.Changed != 0 || len(r.Changes) != 0 {
			t.Fatalf("status %d, %d changed: %+v", status, r.Changed, r.Changes)
		}
	})

	t.Run("a lockout at three locks on the third and fourth failures", func(t *testing.T) {
		dir := candidateDir(t, func(cfg map[string]any) {
			cfg["lockout"].(map[string]any)["max_consecutive_failures"] = 3
		})
		var want int64
		for _, in := range rec.ins {
			a := in.Account
			if in.Point == policies.PointLoginPassword && !*in.Attempt.PasswordOK && a.Exists && !a.Locked &&
				(a.ConsecutiveFailures == 2 || a.ConsecutiveFailures == 3) {
				want++
			}
		}
		if want < 50 {
			t.Fatalf("the log has only %d affected decisions", want)
		}
		r, status := replay(t, rec, "--dir", dir)
		if status != 1 || r.Changed != want {
			t.Fatalf("status %d, %d changed; want status 1 and %d changed: %+v", status, r.Changed, want, r.Changes)
		}
		if len(r.Changes) != 1 {
			t.Fatalf("changes %+v, want one group", r.Changes)
		}
		c := r.Changes[0]
		if c.Point != policies.PointLoginPassword || c.OldReason != "bad_credentials" || c.NewReason != "bad_credentials" ||
			strings.Join(c.Fields, ",") != "lock,notify" || c.Count != want || len(c.Examples) != 3 || !c.First.Before(c.Last) {
			t.Fatalf("change %+v", c)
		}
	})

	t.Run("hosting providers no longer blocked", func(t *testing.T) {
		dir := candidateDir(t, func(cfg map[string]any) {
			cfg["anonymizer"].(map[string]any)["block"].(map[string]any)["hosting_provider"] = false
		})
		// A hosting-provider address was refused before its throttle was
		// looked at: unblocked, the throttled ones are refused for that.
		var allowed, throttled int64
		for i, d := range rec.ds {
			switch {
			case d.Reason != "ip_hosting_provider":
			case rec.ins[i].Client.RecentFailures >= 20: // throttle.max_ip_failures
				throttled++
			default:
				allowed++
			}
		}
		if allowed < 20 || throttled < 1 {
			t.Fatalf("the log has only %d+%d hosting-provider denials", allowed, throttled)
		}
		r, status := replay(t, rec, "--dir", dir)
		if status != 1 || r.Changed != allowed+throttled || len(r.Changes) != 2 {
			t.Fatalf("status %d, %d changed; want status 1 and %d changed: %+v", status, r.Changed, allowed+throttled, r.Changes)
		}
		for i, want := range []policies.ReplayChange{
			{Point: policies.PointLogin, OldReason: "ip_hosting_provider", NewReason: "ip_throttled", Fields: []string{"reason"}, Count: throttled},
			{Point: policies.PointLogin, OldReason: "ip_hosting_provider", NewReason: "ok", Fields: []string{"allow", "reason"}, Count: allowed},
		} {
			c := r.Changes[i]
			if c.Point != want.Point || c.OldReason != want.OldReason || c.NewReason != want.NewReason ||
				!slices.Equal(c.Fields, want.Fields) || c.Count != want.Count {
				t.Errorf("change %d: %+v, want %+v", i, c, want)
			}
		}
	})
}

// The examples a report gives are the first in the logs, and the report is
// byte for byte the same whatever the number of workers.
func TestPolicyReplayIsDeterministic(t *testing.T) {
	rec := recordReplayLog(t)
	dir := candidateDir(t, func(cfg map[string]any) {
		cfg["lockout"].(map[string]any)["max_consecutive_failures"] = 2
	})
	var reports []string
	for _, workers := range []string{"1", "2", "7"} {
		args := []string{"policy", "replay", "--format", "text", "--workers", workers, "--dir", dir}
		for _, f := range rec.files {
			args = append(args, "--log", f)
		}
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, nil, &stdout, &stderr)
		if xe, ok := errors.AsType[*exitError](err); !ok || xe.status != 1 {
			t.Fatalf("status: %v\n%s", err, stderr.String())
		}
		reports = append(reports, stdout.String())
	}
	if reports[0] != reports[1] || reports[0] != reports[2] {
		t.Fatalf("reports differ with the number of workers:\n%s\n%s\n%s", reports[0], reports[1], reports[2])
	}
	for _, want := range []string{"read 3000, unchanged", "login_password  bad_credentials -> bad_credentials  lock,notify"} {
		if !strings.Contains(reports[0], want) {
			t.Errorf("report lacks %q:\n%s", want, reports[0])
		}
	}
}

func TestPolicyReplayUsageAndReadErrors(t *testing.T) {
	dir := candidateDir(t, nil)
	log := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"no log", []string{"--dir", dir}, 2, ""},
		{"no candidate", []string{"--log", log}, 2, ""},
		{"bad format", []string{"--log", log, "--dir", dir, "--format", "yaml"}, 2, ""},
		{"missing log", []string{"--log", log + ".missing", "--dir", dir}, 2, "no such file"},
		{"missing candidate", []string{"--log", log, "--dir", dir + "/missing"}, 2, "candidate"},
		{"empty log", []string{"--log", log, "--dir", dir}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append([]string{"policy", "replay"}, tc.args...), nil, &stdout, &stderr)
			status := 0
			if errors.Is(err, flag.ErrHelp) {
				status = 2
			} else if xe, ok := errors.AsType[*exitError](err); ok {
				status = xe.status
			} else if err != nil {
				status = 1
			}
			if status != tc.status || (tc.want != "" && !strings.Contains(fmt.Sprint(err), tc.want)) {
				t.Fatalf("status %d (%v), want %d mentioning %q", status, err, tc.status, tc.want)
			}
		})
	}
}
