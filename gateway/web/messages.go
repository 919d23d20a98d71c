package web

import (
	"errors"
	"net/http"

	"github.com/portcullis/portcullis/policies"
)

// Message turns a decision's message key into what the person reads.
// Messages never say more than the person may know.
func (s *Site) Message(key string) string {
	switch key {
	case "bad_credentials":
		return MsgBadCredentials
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
		return MsgSessionEnded
	case "try_later":
		return MsgUnavailable
	default:
		return MsgForbidden
	}
}

// callSupport asks the person to call, with the configured number.
func (s *Site) callSupport(why string) string {
	if s.cfg.SupportPhone == "" {
		return "Please call us " + why + "."
	}
	return "Please call us at " + s.cfg.SupportPhone + " " + why + "."
}

// Denial turns a policy refusal into the error the person sees, with the
// status the reason list gives its reason (403 for a reason it lacks).
func (s *Site) Denial(d policies.Decision) *Error {
	status := http.StatusForbidden
	if r, ok := policies.LookupReason(d.Reason); ok {
		status = r.Status
	}
	return &Error{Status: status, Reason: d.Reason, Message: s.Message(d.Message),
		Err: errors.New("policy " + d.Revision + " refused: " + d.Reason), StepUp: d.StepUp}
}
