// Package facts builds what the policies are told about a request's client
// and account: the client address with its risk signals, a phone number's
// line type, and the account's state, from the plugins that know them.
package facts

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/policies"
)

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

// Source builds policy facts from the configured signal plugins.
type Source struct {
	// Signals are the risk signals about client addresses; nil means
	// none are checked and the policies see unchecked addresses.
	Signals IPSignals
	// Phones types phone numbers; nil means no number can be checked,
	// and the policies refuse to send.
	Phones Phones
	Log    *slog.Logger
}

// ip looks the client address up. Without a signal source, or when the
// lookup fails, the facts say Checked=false and the policy decides (by
// default: deny).
func (s *Source) ip(ctx context.Context, addr netip.Addr) policies.IPFacts {
	if s.Signals == nil || !addr.IsValid() {
		return policies.IPFacts{}
	}
	f, err := s.Signals.Lookup(ctx, addr)
	if err != nil {
		s.Log.ErrorContext(ctx, "ip signals lookup failed", "remote_ip", addr.String(), "error", err)
		return policies.IPFacts{}
	}
	return f
}

// Client builds the Client part of a policy input for the client address
// ip, as web.ClientIP returned it: the address, its risk signals and, when
// ip is the zero Addr (a trusted proxy's X-Forwarded-For could not be read,
// or the peer address did not parse), IPUnknown with an empty IP and no
// lookup. The policies refuse an unknown address (ip_unknown). Callers add
// RecentFailures, and must not count failures against an unknown address:
// every unknown client would share one bucket.
func (s *Source) Client(ctx context.Context, ip netip.Addr) policies.Client {
	if !ip.IsValid() {
		return policies.Client{IPUnknown: true}
	}
	return policies.Client{IP: ip.String(), Facts: s.ip(ctx, ip)}
}

// Account is what the policies know about an account; found is false for a
// name that matched no profile.
func Account(u store.User, found bool) policies.Account {
	if !found {
		return policies.Account{}
	}
	return policies.Account{
		Exists:              true,
		Locked:              u.Locked,
		ConsecutiveFailures: u.FailedLogins,
		Products:            u.Products,
		UserID:              u.ID,
	}
}

// IPFailureKey names the counter of failures from one address: wrong
// passwords, wrong codes, failed identity proofs.
func IPFailureKey(addr netip.Addr) string { return "login-fail-ip:" + addr.String() }

// Phone types a profile's security phone. A profile without one, or a
// gateway without a phone classifier, gets facts the policies refuse
// (invalid, unknown line type); so does a number the classifier cannot
// read. The E.164 form is returned for sending.
func (s *Source) Phone(ctx context.Context, raw string) (policies.PhoneFacts, string) {
	if raw == "" || s.Phones == nil {
		return policies.PhoneFacts{LineType: "unknown"}, ""
	}
	f, e164, err := s.Phones.Classify(ctx, raw)
	if err != nil {
		s.Log.InfoContext(ctx, "security phone not usable", "error", err)
		return policies.PhoneFacts{Valid: false, LineType: "unknown", Masked: f.Masked}, ""
	}
	return f, e164
}

// SecondFactors completes the account facts of someone who has passed the
// password: what they can step up with (a code to the security phone by
// text or call, a code by email, and the factors they enrolled: totp,
// passkey, questions), the security phone's line facts and whether an email
// is on file. It reads a carrier lookup, so it is asked only after the
// password matched, where its cost cannot tell an unknown username apart.
func (s *Source) SecondFactors(ctx context.Context, a *policies.Account, u store.User, enrolled []store.Factor) {
	var methods []string
	if u.SecurityPhone != "" {
		methods = append(methods, "sms", "voice")
		phone, _ := s.Phone(ctx, u.SecurityPhone)
		a.SecurityPhone = &phone
	}
	if u.Email != "" {
		methods = append(methods, "email")
		a.EmailOnFile = true
	}
	for _, f := range enrolled {
		if !slices.Contains(methods, f.Kind) {
			methods = append(methods, f.Kind)
		}
	}
	a.SecondFactors = methods
}
