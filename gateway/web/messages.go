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
		return "Your profile is locked after too many incorrect passwords. To unlock it, set a new password with “Forgot password?”. " +
			s.callSupport("if you need help")
	case "step_up_locked":
		return "Your profile is locked after too many incorrect verification answers. To unlock it, reset your password with “Forgot password”. " +
			s.callSupport("if you need help")
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
	case "bad_code":
		return "That code isn't right. Check the code and try again."
	case "code_expired":
		return "That code has expired or been tried too many times. Ask for a new one."
	case "wait_before_resend":
		return "We just sent a code. Please wait a moment before asking for another."
	case "phone_not_accepted":
		return "We can only send codes to a number that belongs to a specific phone in your possession, such as a mobile or a home landline. Internet-based (VoIP), toll-free, premium-rate and shared numbers can't receive them."
	case "phone_invalid":
		return "The security phone on your profile isn't a valid number. " + s.callSupport("to update it")
	case "use_other_channel":
		return "We can't send a code that way to this number. Choose another way to get your code."
	// A refused new password: what to change. The flows that know the
	// policy's numbers say them (policies.PasswordError).
	case "password_rules":
		return "That password doesn't meet our password rules. Choose another."
	case "password_too_short":
		return "That password is too short. Choose a longer one: a few unrelated words make a long password that is easy to remember."
	case "password_too_long":
		return "That password is too long. Choose a shorter one."
	case "password_contains_username":
		return "Your password must not contain your username. Choose another."
	case "password_contains_name":
		return "Your password must not contain your name. Choose another."
	case "password_common":
		return "That password is too common, or has appeared in a data breach. Choose another."
	case "password_guessable":
		return "That password would be easy to guess. Make it longer and less predictable, for example with a few unrelated words; avoid names, dates, seasons and keyboard patterns."
	default:
		return MsgForbidden
	}
}

// SupportLine is the line that points someone whose codes do not arrive to
// the support number.
func (s *Site) SupportLine() string {
	return "Not getting a code? The phone on file may no longer be yours. " + s.callSupport("to update it")
}

// NotSent is what the person reads when a code could not be sent.
const NotSent = "We couldn't send your code. Try again, or choose a call instead."

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
