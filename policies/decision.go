package policies

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Decision is a policy's answer. Allow is false on every failure; fields a
// point does not use are zero.
type Decision struct {
	// Allow is whether the flow may go on (login, send_code, ...) or the
	// request may pass (access).
	Allow bool `json:"allow"`
	// Reason is a stable lowercase code: "ok" for an approval, otherwise
	// why not (ip_anonymous_vpn, bad_credentials, step_up_required, ...).
	Reason string `json:"reason"`
	// Message is the key of the text the gateway shows the person
	// (use_private_network, bad_credentials, call_support, ...). It never
	// says more than the person may know.
	Message string `json:"message,omitempty"`
	// StepUp lists the methods the person may step up with, in the
	// policy's order (step_up_required, step_up_stale; recover lists how a
	// recovery code or message can reach the person).
	StepUp []string `json:"step_up,omitempty"`
	// Lock asks the gateway to lock the account now.
	Lock bool `json:"lock,omitempty"`
	// Unlock asks the gateway to unlock the account (completed password
	// recovery).
	Unlock bool `json:"unlock,omitempty"`
	// Notify lists events to send the customer (account_locked,
	// password_changed, ...).
	Notify []string `json:"notify,omitempty"`
	// CountFailure asks the gateway to add one to the account's
	// consecutive failures.
	CountFailure bool `json:"count_failure,omitempty"`
	// ResetFailures asks the gateway to set the account's consecutive
	// failures to zero.
	ResetFailures bool `json:"reset_failures,omitempty"`
	// CountIPFailure asks the gateway to add one to the client address's
	// recent failures, kept for IPFailureWindowSeconds. It never touches
	// an account's count.
	CountIPFailure bool `json:"count_ip_failure,omitempty"`
	// IPFailureWindowSeconds is how long a counted address failure lasts.
	IPFailureWindowSeconds int64 `json:"ip_failure_window_seconds,omitempty"`
	// CodeTTLSeconds is how long a code sent now is good for (send_code).
	CodeTTLSeconds int64 `json:"code_ttl_seconds,omitempty"`
	// MaxCodeAttempts is how many tries a code sent now allows (send_code).
	MaxCodeAttempts int64 `json:"max_code_attempts,omitempty"`
	// MaxCodeResends is how many resends a challenge allows (send_code).
	MaxCodeResends int64 `json:"max_code_resends,omitempty"`
	// ResendAfterSeconds is how long to wait before offering a resend
	// (send_code).
	ResendAfterSeconds int64 `json:"resend_after_seconds,omitempty"`
	// InvalidateCode asks the gateway to discard the current code
	// (verify_code: used, expired or out of tries).
	InvalidateCode bool `json:"invalidate_code,omitempty"`
	// OfferDeviceRegistration asks the gateway to offer registering this
	// device, unchecked by default (verify_code).
	OfferDeviceRegistration bool `json:"offer_device_registration,omitempty"`
	// DeviceLifetimeSeconds is how long a device registered now stays
	// registered (verify_code, when it offers registration).
	DeviceLifetimeSeconds int64 `json:"device_lifetime_seconds,omitempty"`
	// SessionIdleSeconds and SessionMaxSeconds are the session's idle and
	// absolute limits (login_password when signing in; access).
	SessionIdleSeconds int64 `json:"session_idle_seconds,omitempty"`
	SessionMaxSeconds  int64 `json:"session_max_seconds,omitempty"`
	// StepUpWindowSeconds is how recent a step-up this path needs, 0 when
	// it needs none (access).
	StepUpWindowSeconds int64 `json:"step_up_window_seconds,omitempty"`
	// Revision identifies the policy sources and data that decided; the
	// engine sets it.
	Revision string `json:"policy_revision,omitempty"`
	// DecisionID is the random ID of the decision's line in the decision
	// log, so other logs can point to it; empty when no decision log is
	// written. The engine sets it.
	DecisionID string `json:"decision_id,omitempty"`
}

// failure is the decision for anything that went wrong on the way to one.
func failure(revision string) Decision {
	return Decision{Allow: false, Reason: ReasonPolicyError, Message: "try_later", Revision: revision}
}

// decisionFromValue reads a policy's decision object. Unknown keys are
// ignored so policies may carry extra values; a known key of the wrong type,
// or a missing allow or reason, is an error.
func decisionFromValue(v ast.Value) (Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("decision is %s, not an object", ast.ValueName(v))
	}
	var d Decision
	var haveAllow bool
	err := obj.Iter(func(k, val *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			return nil
		}
		var err error
		switch string(key) {
		case "allow":
			d.Allow, err = boolValue(val)
			haveAllow = err == nil
		case "reason":
			d.Reason, err = stringValue(val)
		case "message":
			d.Message, err = stringValue(val)
		case "step_up":
			d.StepUp, err = stringsValue(val)
		case "lock":
			d.Lock, err = boolValue(val)
		case "unlock":
			d.Unlock, err = boolValue(val)
		case "notify":
			d.Notify, err = stringsValue(val)
		case "count_failure":
			d.CountFailure, err = boolValue(val)
		case "reset_failures":
			d.ResetFailures, err = boolValue(val)
		case "count_ip_failure":
			d.CountIPFailure, err = boolValue(val)
		case "ip_failure_window_seconds":
			d.IPFailureWindowSeconds, err = intValue(val)
		case "code_ttl_seconds":
			d.CodeTTLSeconds, err = intValue(val)
		case "max_code_attempts":
			d.MaxCodeAttempts, err = intValue(val)
		case "max_code_resends":
			d.MaxCodeResends, err = intValue(val)
		case "resend_after_seconds":
			d.ResendAfterSeconds, err = intValue(val)
		case "invalidate_code":
			d.InvalidateCode, err = boolValue(val)
		case "offer_device_registration":
			d.OfferDeviceRegistration, err = boolValue(val)
		case "device_lifetime_seconds":
			d.DeviceLifetimeSeconds, err = intValue(val)
		case "session_idle_seconds":
			d.SessionIdleSeconds, err = intValue(val)
		case "session_max_seconds":
			d.SessionMaxSeconds, err = intValue(val)
		case "step_up_window_seconds":
			d.StepUpWindowSeconds, err = intValue(val)
		}
		if err != nil {
			return fmt.Errorf("decision %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return Decision{}, err
	}
	if !haveAllow {
		return Decision{}, fmt.Errorf("decision has no allow")
	}
	if d.Reason == "" {
		return Decision{}, fmt.Errorf("decision has no reason")
	}
	return d, nil
}

func boolValue(t *ast.Term) (bool, error) {
	b, ok := t.Value.(ast.Boolean)
	if !ok {
		return false, fmt.Errorf("%s, not a boolean", ast.ValueName(t.Value))
	}
	return bool(b), nil
}

func stringValue(t *ast.Term) (string, error) {
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%s, not a string", ast.ValueName(t.Value))
	}
	return string(s), nil
}

func intValue(t *ast.Term) (int64, error) {
	n, ok := t.Value.(ast.Number)
	if !ok {
		return 0, fmt.Errorf("%s, not a number", ast.ValueName(t.Value))
	}
	i, ok := n.Int64()
	if !ok {
		return 0, fmt.Errorf("%s is not an integer", n)
	}
	return i, nil
}

func stringsValue(t *ast.Term) ([]string, error) {
	var out []string
	collect := func(elem *ast.Term) error {
		s, err := stringValue(elem)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	}
	switch v := t.Value.(type) {
	case *ast.Array:
		out = make([]string, 0, v.Len())
		for i := range v.Len() {
			if err := collect(v.Elem(i)); err != nil {
				return nil, err
			}
		}
	case ast.Set:
		// A set has no order; Sorted gives a stable one.
		sorted := v.Sorted()
		for i := range sorted.Len() {
			if err := collect(sorted.Elem(i)); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%s, not a list", ast.ValueName(t.Value))
	}
	return out, nil
}
