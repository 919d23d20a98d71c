package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/policies"
)

// Decider answers a decision point from the policies. It never allows on a
// failure: an evaluation error, an undefined decision or a panic is a deny
// with reason policy_error. *policies.Engine implements it.
type Decider interface {
	Decide(ctx context.Context, in policies.Input) policies.Decision
	// IPFailureWindow is the window in which the policy counts failed
	// logins per client address (the credential-stuffing throttle).
	IPFailureWindow() time.Duration
	// MaxConsecutiveFailures is the number of wrong passwords in a row
	// that locks a profile.
	MaxConsecutiveFailures() int
}

// IPSignals says what the risk signals know about an address (the GeoIP
// plugin implements it). An error means nothing could be checked. Lookup
// is called on every proxied request as well as at login, so it must be
// cheap and safe for concurrent use: implementations cache per address
// (the GeoIP plugin keeps an LRU of facts).
type IPSignals interface {
	Lookup(ctx context.Context, addr netip.Addr) (policies.IPFacts, error)
}

// Phones reads phone numbers and says what line they are on (the phone
// plugin implements it). Classify returns the number in E.164 form; for a
// number it cannot read it returns Valid=false and an error, and when a
// carrier lookup fails the line type is "unknown", which the policies
// refuse: it never fails open. Safe for concurrent use.
type Phones interface {
	Classify(ctx context.Context, raw string) (policies.PhoneFacts, string, error)
}

// ipFacts looks the client address up. Without a signal source, or when the
// lookup fails, the facts say Checked=false and the policy decides (by
// default: deny).
func (s *Server) ipFacts(ctx context.Context, addr netip.Addr) policies.IPFacts {
	if s.signals == nil || !addr.IsValid() {
		return policies.IPFacts{}
	}
	f, err := s.signals.Lookup(ctx, addr)
	if err != nil {
		s.log.ErrorContext(ctx, "ip signals lookup failed", "remote_ip", addr.String(), "error", err)
		return policies.IPFacts{}
	}
	return f
}

// clientFacts builds the Client part of a policy input for the client
// address ip, as ClientIP returned it: the address, its risk signals and,
// when ip is the zero Addr (a trusted proxy's X-Forwarded-For could not be
// read, or the peer address did not parse), IPUnknown with an empty IP and
// no lookup. The policies refuse an unknown address (ip_unknown). Callers
// add RecentFailures, and must not count failures against an unknown
// address: every unknown client would share one bucket.
func (s *Server) clientFacts(ctx context.Context, ip netip.Addr) policies.Client {
	if !ip.IsValid() {
		return policies.Client{IPUnknown: true}
	}
	return policies.Client{IP: ip.String(), Facts: s.ipFacts(ctx, ip)}
}

// ipFailureKey names the counter of failed logins from one address.
func ipFailureKey(addr netip.Addr) string { return "login-fail-ip:" + addr.String() }

// messages turns a decision's message key into what the person reads.
// Messages never say more than the person may know.
func (s *Server) message(key string) string {
	switch key {
	case "bad_credentials":
		return msgBadCredentials
	case "use_private_network":
		return "We can't sign you in over a VPN, proxy or other anonymizing network. Disconnect from it and sign in from a private network, such as your home Wi-Fi or your phone's mobile data."
	case "account_locked":
		return "Your profile is locked after too many incorrect passwords. " + s.callSupport("to unlock it")
	case "step_up_required":
		return "We don't recognise this device, so we need to verify it's you before you continue."
	case "call_support":
		return "We can't complete this online. " + s.callSupport("for help")
	case "not_permitted":
		return "Your profile does not include this service."
	case "session_ended", "login_required":
		return msgSessionEnded
	case "try_later":
		return msgUnavailable
	default:
		return msgForbidden
	}
}

// callSupport asks the person to call, with the configured number.
func (s *Server) callSupport(why string) string {
	if s.cfg.SupportPhone == "" {
		return "Please call us " + why + "."
	}
	return "Please call us at " + s.cfg.SupportPhone + " " + why + "."
}

// denial turns a policy refusal into the error the person sees.
func (s *Server) denial(d policies.Decision) *Error {
	status := http.StatusForbidden
	switch d.Reason {
	case "bad_credentials", "no_session", "session_idle", "session_expired":
		status = http.StatusUnauthorized
	case "ip_throttled":
		status = http.StatusTooManyRequests
	case policies.ReasonPolicyError, "ip_unchecked":
		status = http.StatusServiceUnavailable
	}
	return &Error{Status: status, Reason: d.Reason, Message: s.message(d.Message),
		Err: errors.New("policy " + d.Revision + " refused: " + d.Reason), stepUp: d.StepUp}
}
