package bench

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/plugins/geoip"
	"github.com/portcullis/portcullis/plugins/phone"
	"github.com/portcullis/portcullis/policies"
)

// The login decision as the gateway makes it for a sign-in (gateway/login.go,
// signIn): the client address's anonymizer facts from the Anonymous-IP
// database, the account's security phone classified, the input built, and
// the embedded policies asked. The store reads (the user, recent failures
// from the address) are not part of it; their values are fixed per case.

const anonymousIPTestDB = "../testdata/geoip/GeoIP2-Anonymous-IP-Test.mmdb"

// loginClients is the address mix each benchmark cycles through: mostly
// clean addresses, some anonymizers and one throttled address, so that the
// allow and the deny paths of the login policy both run. want is the
// expected denial reason, "" for allow.
var loginClients = []struct {
	ip       string
	failures int // recent failures from the address
	want     string
}{
	{"192.0.2.10", 0, ""},
	{"192.0.2.11", 0, ""},
	{"127.0.0.1", 0, ""},
	{"192.0.2.12", 1, ""},
	{"127.0.0.2", 0, "ip_anonymous_vpn"},
	{"192.0.2.13", 0, ""},
	{"192.0.2.14", 0, ""},
	{"2001:db8:4::10", 0, ""},
	{"192.0.2.15", 2, ""},
	{"127.0.0.3", 0, "ip_tor_exit_node"},
	{"192.0.2.16", 0, ""},
	{"192.0.2.17", 0, ""},
	{"192.0.2.77", 20, "ip_throttled"},
	{"192.0.2.18", 0, ""},
	{"203.0.113.40", 0, "ip_anonymous_vpn"},
	{"192.0.2.19", 0, ""},
	{"192.0.2.20", 0, ""},
	{"127.0.0.4", 0, "ip_hosting_provider"},
	{"192.0.2.21", 0, ""},
	{"192.0.2.22", 0, ""},
}

// loginPhones are the accounts' security phones as stored (E.164): a US
// number (fixed_line_or_mobile), a UK mobile, a UK landline and a UK VoIP
// number, so step-up offers differ by phone.
var loginPhones = []string{"+16502530000", "+447400123456", "+442079460958", "+445612345678"}

// loginDecider holds the gateway's fact sources and policy engine.
type loginDecider struct {
	engine  *policies.Engine
	signals *geoip.Reader
	phones  *phone.Classifier
	addrs   []netip.Addr
}

// newLoginDecider opens the test database and compiles the embedded
// policies. phoneCache is phone.Config.CacheSize: 0 for the default cache,
// negative to parse every number afresh.
func newLoginDecider(tb testing.TB, phoneCache int) *loginDecider {
	tb.Helper()
	engine, err := policies.New(tb.Context(), policies.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	signals, err := geoip.Open(geoip.Config{AnonymousIPPath: anonymousIPTestDB})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = signals.Close() })
	phones, err := phone.New(phone.Config{DefaultRegion: "US", CacheSize: phoneCache})
	if err != nil {
		tb.Fatal(err)
	}
	d := &loginDecider{engine: engine, signals: signals, phones: phones}
	for _, c := range loginClients {
		d.addrs = append(d.addrs, netip.MustParseAddr(c.ip))
	}
	return d
}

// attempt is one sign-in of the mix: a client address and the account's
// security phone, as indexes into loginClients and loginPhones.
type attempt struct{ client, phone int }

// decide makes the decision for a at point. For login_password, passwordOK
// is the outcome of the password check; it is ignored for login.
func (d *loginDecider) decide(ctx context.Context, a attempt, point policies.Point, passwordOK bool) policies.Decision {
	addr := d.addrs[a.client]
	facts, err := d.signals.Lookup(ctx, addr)
	if err != nil {
		facts = policies.IPFacts{} // as the gateway: unchecked
	}
	// Facts come back even for an invalid number (Valid=false), which is
	// what the policy should judge.
	pf, _, _ := d.phones.Classify(ctx, loginPhones[a.phone])
	in := policies.Input{
		Point: point,
		Now:   time.Now().Unix(),
		Client: policies.Client{
			IP:             addr.String(),
			Facts:          facts,
			RecentFailures: loginClients[a.client].failures,
		},
		Account: policies.Account{
			Exists:        true,
			SecondFactors: []string{"sms", "voice", "totp"},
			SecurityPhone: &pf,
			EmailOnFile:   true,
			Products:      []string{"savings"},
		},
		Request: policies.Request{Host: "login.bank.test", Path: "/.portcullis/login", Method: "POST"},
	}
	if point == policies.PointLoginPassword {
		in.Attempt = policies.PasswordAttempt(passwordOK)
	}
	return d.engine.Decide(ctx, in)
}

// loginDecisionCase is one benchmarked variant.
type loginDecisionCase struct {
	name       string
	point      policies.Point
	passwordOK bool
	phoneCache int
	// clean cycles only through the addresses the login point allows, the
	// ones the gateway goes on to check the password for.
	clean bool
}

var loginDecisionCases = []loginDecisionCase{
	{name: "login", point: policies.PointLogin},
	{name: "login_uncached_phone", point: policies.PointLogin, phoneCache: -1},
	{name: "login_password_right", point: policies.PointLoginPassword, passwordOK: true, clean: true},
	{name: "login_password_wrong", point: policies.PointLoginPassword, passwordOK: false, clean: true},
}

// attempts is the mix the case cycles through: each of its clients with
// each phone, in a fixed shuffled order so that consecutive decisions differ
// in address, phone and outcome.
func (tc loginDecisionCase) attempts() []attempt {
	var as []attempt
	for c, client := range loginClients {
		if tc.clean && client.want != "" {
			continue
		}
		for p := range loginPhones {
			as = append(as, attempt{c, p})
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(as), func(i, j int) { as[i], as[j] = as[j], as[i] })
	return as
}

// want is the reason expected for a, "" for allow.
func (tc loginDecisionCase) want(a attempt) string {
	switch {
	case tc.point == policies.PointLogin:
		return loginClients[a.client].want
	case tc.passwordOK:
		return "step_up_required" // the gateway sends no device facts
	default:
		return "bad_credentials"
	}
}

// check makes every decision of the mix once and returns the mix, failing
// on an unexpected answer. It also fills the GeoIP and phone caches, as
// earlier sign-ins would in production.
func (tc loginDecisionCase) check(tb testing.TB, d *loginDecider) []attempt {
	tb.Helper()
	as := tc.attempts()
	for _, a := range as {
		got := d.decide(tb.Context(), a, tc.point, tc.passwordOK)
		want := tc.want(a)
		if got.Allow != (want == "") || (want != "" && got.Reason != want) {
			tb.Fatalf("%s from %s with phone %s: got allow=%v reason %q, want %q",
				tc.point, loginClients[a.client].ip, loginPhones[a.phone], got.Allow, got.Reason, want)
		}
	}
	return as
}

// TestLoginDecisionSetup checks that each benchmarked variant gets the
// decisions it is meant to measure.
func TestLoginDecisionSetup(t *testing.T) {
	for _, tc := range loginDecisionCases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, newLoginDecider(t, tc.phoneCache))
		})
	}
}

// BenchmarkLoginDecision reports the mean time and allocations of one login
// decision, facts included.
func BenchmarkLoginDecision(b *testing.B) {
	for _, tc := range loginDecisionCases {
		b.Run(tc.name, func(b *testing.B) {
			d := newLoginDecider(b, tc.phoneCache)
			as := tc.check(b, d)
			ctx := b.Context()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				d.decide(ctx, as[n%len(as)], tc.point, tc.passwordOK)
				n++
			}
		})
	}
}

// BenchmarkLoginDecisionLatency times every decision on its own and reports
// the distribution: p50-µs, p90-µs, p99-µs and max-µs (nearest rank). Use
// -benchtime 20000x or more for a stable p99.
func BenchmarkLoginDecisionLatency(b *testing.B) {
	for _, tc := range loginDecisionCases {
		b.Run(tc.name, func(b *testing.B) {
			d := newLoginDecider(b, tc.phoneCache)
			as := tc.check(b, d)
			ctx := b.Context()
			samples := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				d.decide(ctx, as[i%len(as)], tc.point, tc.passwordOK)
				samples[i] = time.Since(start)
			}
			b.StopTimer()
			reportLatency(b, samples)
		})
	}
}

// reportLatency reports p50-µs, p90-µs, p99-µs and max-µs of samples
// (nearest rank).
func reportLatency(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	for _, m := range []struct {
		unit string
		d    time.Duration
	}{
		{"p50-µs", percentile(samples, 50)},
		{"p90-µs", percentile(samples, 90)},
		{"p99-µs", percentile(samples, 99)},
		{"max-µs", samples[len(samples)-1]},
	} {
		b.ReportMetric(float64(m.d.Nanoseconds())/1e3, m.unit)
	}
}

// The access decision on a miss in the engine's access cache, as
// checkAccess (gateway/server.go) asks it on a proxied request: the
// client address's facts looked up, the account's facts and the session's,
// the route and the path. A miss evaluates access's route_decision and
// applies the session and step-up time limits in Go; a hit (the common
// case, BenchmarkDecideAccess/cached in policies) does no evaluation.

// accessRequests is the request mix: allowed pages and sensitive paths,
// step-ups missing and stale, and an address on a VPN. want is the
// expected denial reason, "" for allow.
var accessRequests = []struct {
	ip       string
	path     string
	stepUpAt int64 // seconds before now; 0 for none
	want     string
}{
	{"192.0.2.10", "/accounts", 0, ""},
	{"192.0.2.11", "/transfers/new", 60, ""},
	{"127.0.0.1", "/accounts/statements", 0, ""},
	{"192.0.2.12", "/transfers/new", 0, "step_up_required"},
	{"2001:db8:4::10", "/payees", 601, "step_up_stale"},
	{"192.0.2.13", "/profile/security", 120, ""},
	{"127.0.0.2", "/accounts", 0, "ip_anonymous_vpn"},
	{"192.0.2.14", "/", 0, ""},
}

// accessInput is request r of the mix at op n. Every op has a different
// Account.ConsecutiveFailures, a fact route_decision does not judge but the
// access cache keys on (it keys on every account fact), so every op misses
// the cache with the answer unchanged.
func (d *loginDecider) accessInput(ctx context.Context, r, n int) policies.Input {
	req := accessRequests[r]
	addr := netip.MustParseAddr(req.ip)
	facts, err := d.signals.Lookup(ctx, addr)
	if err != nil {
		facts = policies.IPFacts{}
	}
	pf, _, _ := d.phones.Classify(ctx, loginPhones[n%len(loginPhones)])
	now := time.Now().Unix()
	sess := &policies.Session{
		Methods:  []string{"pwd"},
		AuthTime: now - 1800,
		LastSeen: now - 30,
		Created:  now - 1800,
	}
	if req.stepUpAt != 0 {
		sess.Methods = []string{"pwd", "sms"}
		sess.StepUpAt = now - req.stepUpAt
	}
	return policies.Input{
		Point:  policies.PointAccess,
		Now:    now,
		Client: policies.Client{IP: addr.String(), Facts: facts},
		Account: policies.Account{
			Exists:              true,
			ConsecutiveFailures: n,
			SecondFactors:       []string{"sms", "voice", "totp"},
			SecurityPhone:       &pf,
			EmailOnFile:         true,
			Products:            []string{"savings"},
		},
		Request: policies.Request{Route: "savings", Host: "savings.bank.test", Path: req.path, Method: "GET"},
		Session: sess,
	}
}

// checkAccess makes every decision of the mix once, failing on an
// unexpected answer, and fills the GeoIP and phone caches.
func checkAccess(tb testing.TB, d *loginDecider) {
	tb.Helper()
	for r, req := range accessRequests {
		// Failure counts above any op's, so the ops still miss.
		got := d.engine.Decide(tb.Context(), d.accessInput(tb.Context(), r, 1<<30+r))
		if got.Allow != (req.want == "") || (req.want != "" && got.Reason != req.want) {
			tb.Fatalf("access %s from %s: got allow=%v reason %q, want %q", req.path, req.ip, got.Allow, got.Reason, req.want)
		}
	}
}

func TestAccessDecisionSetup(t *testing.T) {
	checkAccess(t, newLoginDecider(t, 0))
}

// BenchmarkAccessDecisionUncached reports the mean time and allocations
// of an access decision that misses the cache, facts included, and its
// distribution as BenchmarkLoginDecisionLatency does. The engine has its
// default cache (10,000 entries), so past that many ops each miss also
// evicts an entry, as a full cache in production does.
func BenchmarkAccessDecisionUncached(b *testing.B) {
	d := newLoginDecider(b, 0)
	checkAccess(b, d)
	ctx := b.Context()
	samples := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		d.engine.Decide(ctx, d.accessInput(ctx, i%len(accessRequests), i))
		samples[i] = time.Since(start)
	}
	b.StopTimer()
	reportLatency(b, samples)
}
