package gateway

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer, no header", "198.51.100.7:5555", nil, "198.51.100.7"},
		{"untrusted peer ignores header", "198.51.100.7:5555", []string{"203.0.113.9"}, "198.51.100.7"},
		{"untrusted peer ignores spoofed loopback", "198.51.100.7:5555", []string{"127.0.0.1"}, "198.51.100.7"},
		{"trusted peer, one hop", "10.0.0.2:443", []string{"203.0.113.9"}, "203.0.113.9"},
		{"trusted peer, client-prepended junk", "10.0.0.2:443", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"trusted chain read from right", "10.0.0.2:443", []string{"1.2.3.4, 203.0.113.9, 10.1.1.1"}, "203.0.113.9"},
		{"multiple header lines", "10.0.0.2:443", []string{"1.2.3.4", "203.0.113.9, 10.1.1.1"}, "203.0.113.9"},
		{"trusted peer, no header", "10.0.0.2:443", nil, "10.0.0.2"},
		{"trusted peer, empty header", "10.0.0.2:443", []string{""}, "10.0.0.2"},
		{"garbage at the right stops at the proxy", "10.0.0.2:443", []string{"203.0.113.9, nonsense"}, "10.0.0.2"},
		{"all trusted", "10.0.0.2:443", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"entry with port", "10.0.0.2:443", []string{"203.0.113.9:1234"}, "203.0.113.9"},
		{"ipv6 peer", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"ipv6 bracketed entry", "[fd00::1]:443", []string{"[2001:db8::5]"}, "2001:db8::5"},
		{"ipv6 bracketed with port", "[fd00::1]:443", []string{"[2001:db8::5]:80"}, "2001:db8::5"},
		{"mapped ipv4 peer", "[::ffff:10.0.0.2]:443", []string{"203.0.113.9"}, "203.0.113.9"},
		{"zone refused", "10.0.0.2:443", []string{"fe80::1%eth0"}, "10.0.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, trusted); got.String() != tc.want {
				t.Fatalf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

// FuzzClientIP checks the two promises that matter: an untrusted peer is
// always the answer, whatever the header says; and with a trusted peer the
// answer is either in a trusted network or appears in the header.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2:443", "203.0.113.9")
	f.Add("198.51.100.7:1", "1.2.3.4, 10.0.0.1")
	f.Add("10.0.0.2:443", "[::1]:80,,  ,x")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := ClientIP(r, trusted)
		peer := peerAddr(remote)
		if !peer.IsValid() {
			if got.IsValid() {
				t.Fatalf("invalid peer %q gave %s", remote, got)
			}
			return
		}
		if !inPrefixes(peer, trusted) {
			if got != peer {
				t.Fatalf("untrusted peer %s: got %s from header %q", peer, got, xff)
			}
			return
		}
		if !got.IsValid() {
			t.Fatalf("trusted peer %s gave an invalid address", peer)
		}
		if got != peer && !inPrefixes(got, trusted) {
			found := false
			for _, e := range splitComma(xff) {
				if a, ok := parseForwardedAddr(e); ok && a == got {
					found = true
				}
			}
			if !found {
				t.Fatalf("got %s, which is neither trusted nor in %q", got, xff)
			}
		}
	})
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
