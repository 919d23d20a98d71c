package gateway_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// withTrustedLoopback makes every loopback peer a trusted proxy, so tests
// can name the client in X-Forwarded-For.
func withTrustedLoopback() option {
	return func(s *setup) { s.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }
}

// withAccessNetworkChecks sets config.access.block_anonymizers in a copy of
// the shipped policies.
func withAccessNetworkChecks(t *testing.T, on bool) option {
	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["access"].(map[string]any)["block_anonymizers"] = on
		})
	})
	return opt
}

// TestSessionMovedToAnonymizerIsRefused: a session opened from a clean
// address is judged on the network of every proxied request, not only the
// login's. From a VPN, Tor or an address the gateway cannot read it is
// refused with a 403 asking for a private network and the upstream never
// sees the request; with config.access.block_anonymizers off it passes.
func TestSessionMovedToAnonymizerIsRefused(t *testing.T) {
	tests := []struct {
		name       string
		knobOn     bool
		source     string // the TCP peer of the proxied request
		xff        string // X-Forwarded-For, from a trusted loopback proxy
		wantReason string // "" when the request reaches the upstream
	}{
		{"vpn peer", true, "127.0.0.2", "", "ip_anonymous_vpn"},
		{"tor peer", true, "127.0.0.3", "", "ip_tor_exit_node"},
		{"vpn behind trusted proxy", true, "127.0.0.1", "127.0.0.2", "ip_anonymous_vpn"},
		{"unreadable forwarded address", true, "127.0.0.1", "1.2.3.4, garbage", "ip_unknown"},
		{"clean address", true, "127.0.0.1", "", ""},
		{"vpn peer, knob off", false, "127.0.0.2", "", ""},
		{"vpn behind trusted proxy, knob off", false, "127.0.0.1", "127.0.0.2", ""},
		{"unreadable forwarded address, knob off", false, "127.0.0.1", "unknown", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decisions := &lockedBuffer{}
			h := newHarness(t, withTrustedLoopback(), withAccessNetworkChecks(t, tc.knobOn), withDecisionLog(decisions))
			home := h.client(true)
			home.mustLogin(bankHost)
			if resp := home.get(bankHost, "/accounts"); resp.StatusCode != http.StatusOK {
				t.Fatalf("from the clean address: %d", resp.StatusCode)
			}
			before := len(h.bank.requests())

			moved := h.clientFrom(tc.source, false)
			moved.Jar = home.Jar // the same session, from another network
			req := mustReq(t, http.MethodGet, h.url(bankHost, "/accounts"), nil)
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			resp := moved.do(req)
			body := readAll(t, resp)
			got := h.bank.requests()[before:]

			if tc.wantReason == "" {
				if resp.StatusCode != http.StatusOK || len(got) != 1 {
					t.Fatalf("got %d and %d upstream requests, want 200 and 1\n%s", resp.StatusCode, len(got), body)
				}
				if xff := got[0].Header.Values("X-Forwarded-For"); tc.xff == "unknown" && len(xff) != 0 {
					t.Fatalf("upstream got X-Forwarded-For %q for an unknown client", xff)
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403\n%s", resp.StatusCode, body)
			}
			if !strings.Contains(body, "private network") {
				t.Fatalf("page does not tell the person to move to a private network:\n%s", body)
			}
			if len(got) != 0 {
				t.Fatalf("upstream received %d requests from a refused network", len(got))
			}
			if !decisions.loggedReason(tc.wantReason) {
				t.Fatalf("no access decision with reason %s in the decision log", tc.wantReason)
			}
			// The session is kept: back on the clean network it works.
			if resp := home.get(bankHost, "/accounts"); resp.StatusCode != http.StatusOK {
				t.Fatalf("back on the clean address: %d", resp.StatusCode)
			}
			if n := len(h.bank.requests()) - before; n != 1 {
				t.Fatalf("upstream received %d requests, want only the one from the clean address", n)
			}
		})
	}
}

// TestUnreadableForwardedForLoginIsRefused: a trusted proxy's
// X-Forwarded-For that cannot be read is not charged to the proxy's own
// clean address; the login is refused as ip_unknown, even where unchecked
// addresses are allowed.
func TestUnreadableForwardedForLoginIsRefused(t *testing.T) {
	dirOpt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["anonymizer"].(map[string]any)["allow_unchecked_ip"] = true
		})
	})
	h := newHarness(t, withTrustedLoopback(), dirOpt)
	for _, xff := range []string{"1.2.3.4, ", "1.2.3.4, garbage", "unknown", "1.2.3.4%eth0", "01.2.3.4"} {
		t.Run(xff, func(t *testing.T) {
			b := h.client(true)
			req := mustReq(t, http.MethodPost, h.url(bankHost, "/.portcullis/api/v1/login"),
				strings.NewReader(`{"username":"alice","password":"`+alicePassword+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", xff)
			resp := b.do(req)
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"ip_unknown"`) {
				t.Fatalf("login with X-Forwarded-For %q: %d %s", xff, resp.StatusCode, body)
			}
		})
	}
	// The proxy's own address is untouched and signs in.
	h.client(true).mustLogin(bankHost)
}

// loggedReason reports whether a logged decision carries reason.
func (b *lockedBuffer) loggedReason(reason string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), `"reason":"`+reason+`"`)
}
