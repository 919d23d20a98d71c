package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that made the request: the TCP
// peer, unless the peer is one of the trusted proxy networks, in which case
// X-Forwarded-For is read from the right and the first address not in a
// trusted network is the client. A client can prepend anything it likes to
// X-Forwarded-For, so entries left of the first untrusted one are ignored.
//
// The zero Addr means the client address is unknown: the peer address could
// not be parsed, or a trusted hop's X-Forwarded-For could not be read (an
// empty entry, "unknown", a zone, a leading zero, any other garbage).
// Falling back to the last good hop would charge the request to a proxy's
// own, clean address and its throttle bucket, so callers must treat the
// zero Addr as unknown (see Server.clientFacts) and never look it up or
// count failures against it. A header value that is empty as a whole is
// no hop at all and is skipped.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		if strings.TrimSpace(values[i]) == "" {
			continue
		}
		entries := strings.Split(values[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			addr, ok := parseForwardedAddr(entries[j])
			if !ok {
				// Garbage from a hop we trust to append properly:
				// who sent the request cannot be known.
				return netip.Addr{}
			}
			client = addr
			if !inPrefixes(addr, trusted) {
				return client
			}
		}
	}
	return client
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
}

// parseForwardedAddr parses one X-Forwarded-For entry: an IP address, possibly
// with a port or in brackets. Zones are refused.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		s = ap.Addr().String()
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

func inPrefixes(addr netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
