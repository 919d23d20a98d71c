package policies

import "testing"

// TestAccessJudgesTheClientNetwork: the access point sees the address's
// facts on every request, and the cache keys on them, so one session's
// clean answer is never served to the same session from a VPN, nor the
// other way round.
func TestAccessJudgesTheClientNetwork(t *testing.T) {
	e := newEngine(t, Config{})
	clean := accessInput("/accounts", 0)
	vpn := clean
	vpn.Client = Client{IP: "203.0.113.9", Facts: IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}}
	unknown := clean
	unknown.Client = Client{IPUnknown: true}
	otherClean := clean
	otherClean.Client.IP = "192.0.2.44"
	tests := []struct {
		name   string
		in     Input
		reason string
	}{
		{"clean", clean, "ok"},
		{"vpn", vpn, "ip_anonymous_vpn"},
		{"clean again", clean, "ok"},
		{"another clean address", otherClean, "ok"},
		{"unknown", unknown, "ip_unknown"},
		{"vpn again", vpn, "ip_anonymous_vpn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := e.Decide(t.Context(), tc.in); d.Reason != tc.reason {
				t.Fatalf("reason %q, want %q (%+v)", d.Reason, tc.reason, d)
			}
		})
	}
	// Two clean addresses with the same facts share one cache entry.
	if n := e.cache.Len(); n != 3 {
		t.Errorf("access cache holds %d entries, want 3 (clean, vpn, unknown)", n)
	}
}

// TestUnparseableClientIPIsUnknown: Decide marks an address it cannot parse
// as unknown, so a caller that passes the zero netip.Addr's "invalid IP"
// gets ip_unknown, not the weaker ip_unchecked that allow_unchecked_ip
// waives.
func TestUnparseableClientIPIsUnknown(t *testing.T) {
	e := newEngine(t, Config{})
	for _, tc := range []struct {
		ip, reason string
	}{
		{"invalid IP", "ip_unknown"},
		{"1.2.3.4, garbage", "ip_unknown"},
		{"198.51.100.7", "ok"},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			in := cleanLogin()
			in.Client.IP = tc.ip
			if d := e.Decide(t.Context(), in); d.Reason != tc.reason {
				t.Fatalf("reason %q, want %q", d.Reason, tc.reason)
			}
		})
	}
}
