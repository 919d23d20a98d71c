package policies

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func accessInput(path string, stepUpAt int64) Input {
	in := cleanLogin()
	in.Point = PointAccess
	in.Request = Request{Route: "savings", Host: "savings.example.com", Path: path, Method: "GET"}
	in.Session = &Session{
		Methods:  []string{"password", "sms"},
		AuthTime: testNow.Unix() - 300,
		StepUpAt: stepUpAt,
		LastSeen: testNow.Unix() - 10,
		Created:  testNow.Unix() - 300,
	}
	return in
}

// TestAccessCacheMatchesPolicy checks that the cached route_decision with
// the time limits applied in Go answers as the policy's whole decision rule
// does, across sessions, paths and times.
func TestAccessCacheMatchesPolicy(t *testing.T) {
	cached := newEngine(t, Config{})
	uncached := newEngine(t, Config{AccessCacheSize: -1})
	now := testNow.Unix()
	var cases []Input
	for _, path := range []string{"/accounts", "/transfers/new", "/payees", "/Profile/Security"} {
		for _, stepUpAt := range []int64{0, now - 60, now - 600, now - 601} {
			for _, lastSeen := range []int64{now - 10, now - 900, now - 901} {
				for _, created := range []int64{now - 300, now - 43200, now - 43201, 0} {
					in := accessInput(path, stepUpAt)
					in.Session.LastSeen, in.Session.Created = lastSeen, created
					cases = append(cases, in)
				}
			}
		}
	}
	for _, mutate := range []func(*Input){
		func(in *Input) { in.Account.Locked = true },
		func(in *Input) { in.Account.Exists = false },
		func(in *Input) { in.Request.Route = "cards" },
		func(in *Input) { in.Account.SecondFactors = nil },
		func(in *Input) { in.Account.SecurityPhone.LineType = "voip" },
		func(in *Input) { in.Session = nil },
		func(in *Input) { in.Client.Facts.AnonymousVPN, in.Client.Facts.Anonymous = true, true },
		func(in *Input) { in.Client.Facts.TorExitNode = true },
		func(in *Input) { in.Client.Facts = IPFacts{} },
		func(in *Input) { in.Client = Client{IPUnknown: true} },
		func(in *Input) { in.Client.IP = "invalid IP" },
	} {
		in := accessInput("/transfers", now-60)
		mutate(&in)
		cases = append(cases, in)
	}
	for i, in := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			// Twice: a miss, then a hit.
			for range 2 {
				got := cached.Decide(t.Context(), in)
				want := uncached.Decide(t.Context(), in)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("input %+v session %+v\ncached   %+v\nuncached %+v", in.Request, in.Session, got, want)
				}
			}
		})
	}
	if cached.cache.Len() == 0 || cached.cache.Len() > 40 {
		t.Errorf("cache holds %d entries", cached.cache.Len())
	}
}

func TestAccessCacheFollowsStepUpAndReload(t *testing.T) {
	dir := policyDir(t)
	e := newEngine(t, Config{Dir: dir})
	ctx := t.Context()
	in := accessInput("/transfers/new", 0)
	if d := e.Decide(ctx, in); d.Reason != "step_up_required" {
		t.Fatalf("before step-up: %+v", d)
	}
	in.Session.StepUpAt = testNow.Unix() - 30
	if d := e.Decide(ctx, in); !d.Allow {
		t.Fatalf("after step-up: %+v", d)
	}
	in.Session.LastSeen = testNow.Unix() - 901
	if d := e.Decide(ctx, in); d.Reason != "session_idle" {
		t.Fatalf("idle: %+v", d)
	}
	in.Session.LastSeen = testNow.Unix() - 10
	editFile(t, dir, "data.json", `"idle_seconds": 900`, `"idle_seconds": 5`)
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(ctx, in); d.Reason != "session_idle" || d.SessionIdleSeconds != 5 {
		t.Fatalf("after reload: %+v", d)
	}
}

func TestRouteDecisionMustBeCacheable(t *testing.T) {
	for _, tc := range []struct{ name, rule string }{
		{"time", `route_refusal := "late" if input.now > 0`},
		{"client address", `route_refusal := "vpn" if input.client.ip == "203.0.113.9"`},
		{"client failures", `route_refusal := "busy" if input.client.recent_failures > 3`},
		{"whole client", `route_refusal := "odd" if count(input.client) > 9`},
		{"raw path", `route_refusal := "admin" if startswith(input.request.path, "/admin")`},
		{"session time", `route_refusal := "old" if input.session.created < 5`},
		{"whole session", `route_refusal := "odd" if count(input.session) > 9`},
		{"whole input", `route_refusal := "odd" if count(input) > 9`},
		{"session by key", `route_refusal := "odd" if { some k; input.session[k] == 0 }`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := policyDir(t)
			editFile(t, dir, "access.rego", `route_refusal := "no_session" if {
	not input.session
} else := "no_session" if {`, tc.rule+` else := "no_session" if {
	not input.session
} else := "no_session" if {`)
			_, err := New(t.Context(), Config{Dir: dir})
			if err == nil || !strings.Contains(err.Error(), "access cache") {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func TestAccessWithoutRouteDecisionIsUncached(t *testing.T) {
	dir := policyDir(t)
	writeFile(t, dir, "access.rego", `package portcullis.access

default decision := {"allow": false, "reason": "policy_default_deny"}

decision := {"allow": true, "reason": "ok"} if input.session.created > 0
`)
	e := newEngine(t, Config{Dir: dir})
	if e.current.Load().route != nil {
		t.Fatal("route query prepared")
	}
	if d := e.Decide(t.Context(), accessInput("/transfers", 0)); !d.Allow {
		t.Fatalf("got %+v", d)
	}
	if e.cache.Len() != 0 {
		t.Error("cached without a route_decision")
	}
}
