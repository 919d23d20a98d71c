package web

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// unknown is how the zero netip.Addr prints: the client address is unknown.
const unknown = "invalid IP"

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
		{"garbage at the right is unknown", "10.0.0.2:443", []string{"203.0.113.9, nonsense"}, unknown},
		{"garbage behind a trusted hop is unknown", "10.0.0.2:443", []string{"garbage, 10.1.1.1"}, unknown},
		{"garbage left of the client is ignored", "10.0.0.2:443", []string{"garbage, 203.0.113.9"}, "203.0.113.9"},
		{"garbage from an untrusted peer is ignored", "198.51.100.7:5555", []string{"unknown"}, "198.51.100.7"},
		{"unparseable peer is unknown", "not-an-address", nil, unknown},
		{"all trusted", "10.0.0.2:443", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"entry with port", "10.0.0.2:443", []string{"203.0.113.9:1234"}, "203.0.113.9"},
		{"ipv6 peer", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"ipv6 bracketed entry", "[fd00::1]:443", []string{"[2001:db8::5]"}, "2001:db8::5"},
		{"ipv6 bracketed with port", "[fd00::1]:443", []string{"[2001:db8::5]:80"}, "2001:db8::5"},
		{"mapped ipv4 peer", "[::ffff:10.0.0.2]:443", []string{"203.0.113.9"}, "203.0.113.9"},
		{"zone refused", "10.0.0.2:443", []string{"fe80::1%eth0"}, unknown},
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

// TestClientIPUnreadableForwardedForIsUnknown: a trusted proxy's
// X-Forwarded-For that cannot be read gives no client address, never the
// proxy's own (which is clean and would share its throttle bucket).
func TestClientIPUnreadableForwardedForIsUnknown(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, xff := range []string{"1.2.3.4, ", "1.2.3.4, garbage", "unknown", "1.2.3.4%eth0", "01.2.3.4"} {
		t.Run(xff, func(t *testing.T) {
			r := &http.Request{RemoteAddr: "10.0.0.2:443", Header: http.Header{"X-Forwarded-For": {xff}}}
			if got := ClientIP(r, trusted); got.IsValid() {
				t.Fatalf("ClientIP with X-Forwarded-For %q = %s, want unknown", xff, got)
			}
			// The same header from an untrusted peer is ignored.
			r.RemoteAddr = "198.51.100.7:5555"
			if got := ClientIP(r, trusted); got != netip.MustParseAddr("198.51.100.7") {
				t.Fatalf("untrusted peer with X-Forwarded-For %q = %s, want the peer", xff, got)
			}
		})
	}
}

// FuzzClientIP checks the two promises that matter: an untrusted peer is
// always the answer, whatever the header says; and with a trusted peer the
// answer is either in a trusted network or appears in the header, or is
// unknown only because the header holds an entry that does not parse.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2:443", "203.0.113.9")
	f.Add("198.51.100.7:1", "1.2.3.4, 10.0.0.1")
	f.Add("10.0.0.2:443", "[::1]:80,,  ,x")
	f.Add("10.0.0.2:443", "1.2.3.4, ")
	f.Add("10.0.0.2:443", "unknown")
	f.Add("10.0.0.2:443", "01.2.3.4")
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
			garbage := false
			for _, e := range splitComma(xff) {
				if _, ok := parseForwardedAddr(e); !ok {
					garbage = true
				}
			}
			if !garbage || strings.TrimSpace(xff) == "" {
				t.Fatalf("trusted peer %s gave unknown for the readable header %q", peer, xff)
			}
			return
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
