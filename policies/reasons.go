package policies

import (
	"net/http"
	"slices"
	"strings"
)

// Reason codes that Go code produces or branches on. Every code, these and
// the ones only the policies produce, is in the list Reasons returns, which
// docs/policies.md documents; a test holds the list, the shipped Rego and
// the docs to one another.
const (
	// ReasonOK is the reason of an approval.
	ReasonOK = "ok"
	// ReasonDefaultDeny is what each point answers when none of its rules
	// decides.
	ReasonDefaultDeny = "policy_default_deny"
	// ReasonPolicyError means the policy could not decide: an evaluation
	// error, an undefined or malformed decision, an unknown point or a
	// panic. The engine answers it; the gateway denies with a generic
	// message.
	ReasonPolicyError = "policy_error"

	// Policy reasons the gateway acts on.
	ReasonBadCredentials   = "bad_credentials"
	ReasonIPThrottled      = "ip_throttled"
	ReasonIPUnchecked      = "ip_unchecked"
	ReasonNoSession        = "no_session" // the gateway answers it too
	ReasonSessionExpired   = "session_expired"
	ReasonSessionIdle      = "session_idle"
	ReasonStepUpRequired   = "step_up_required"
	ReasonPasswordTooShort = "password_too_short"
	ReasonPasswordTooLong  = "password_too_long"
	// The new-password refusals after length, in the policy's order.
	ReasonPasswordContainsUsername = "password_contains_username"
	ReasonPasswordContainsName     = "password_contains_name"
	ReasonPasswordCommon           = "password_common"
	ReasonPasswordGuessable        = "password_guessable"
	// ReasonUsernameTaken refuses a username another profile has.
	ReasonUsernameTaken = "username_taken"

	// The enrolment reasons the gateway answers itself too: the same
	// answer for an identity with a profile as for no match, a profile
	// made meanwhile by another enrolment, and an account to add that the
	// record lacks or may not add.
	ReasonIdentityNotVerified = "identity_not_verified"
	ReasonProfileExists       = "profile_exists"
	ReasonAccountNotEligible  = "account_not_eligible"
	// A recovery the gateway answers as if it could proceed, so that
	// nobody learns whether the details matched a profile that can
	// receive a code.
	ReasonRecoveryUnavailable = "recovery_unavailable"

	// The gateway's own reasons, for refusals no policy decides.
	ReasonBadGrant            = "bad_grant"
	ReasonBadRequest          = "bad_request"
	ReasonCrossOrigin         = "cross_origin"
	ReasonCSRF                = "csrf"
	ReasonForwardAuthRefused  = "forward_auth_refused"
	ReasonNotFound            = "not_found"
	ReasonUnauthenticated     = "unauthenticated"
	ReasonUnavailable         = "unavailable"
	ReasonUpstreamUnavailable = "upstream_unavailable"
	ReasonCodeNotSent         = "code_not_sent"
)

// Emitter says who produces a reason code. A code may have several.
type Emitter uint8

const (
	// ByPolicy codes come from the Rego policies' decisions.
	ByPolicy Emitter = 1 << iota
	// ByEngine codes come from Engine.Decide when the policy could not
	// decide.
	ByEngine
	// ByGateway codes come from the gateway's own checks, in its JSON
	// answers and logs.
	ByGateway
)

// String names the emitters, "policy", "engine" and "gateway", joined by
// ", " in that order: how docs/policies.md writes them.
func (e Emitter) String() string {
	var names []string
	for _, n := range []struct {
		bit  Emitter
		name string
	}{{ByPolicy, "policy"}, {ByEngine, "engine"}, {ByGateway, "gateway"}} {
		if e&n.bit != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ", ")
}

// Reason describes one reason code.
type Reason struct {
	// Code is the stable lowercase code carried by Decision.Reason, the
	// JSON API's "reason" and the logs' reason key.
	Code string
	// By is who produces the code.
	By Emitter
	// Status is the HTTP status the gateway answers a refusal with this
	// code with (200 for ok). A caller that knows more may answer a more
	// specific one: 415 rather than 400 for a body that is not JSON, 504
	// rather than 502 for an upstream that timed out.
	Status int
	// Meaning says in one line when the code is given.
	Meaning string
}

// reasons is every known code, sorted by Code (a test checks the order).
// A policy loaded from a directory may answer codes of its own that are
// not here; the gateway treats those as refusals (403).
var reasons = []Reason{
	{"account_locked", ByPolicy, http.StatusForbidden, "the profile is locked; told only to someone who typed the right password"},
	{ReasonAccountNotEligible, ByPolicy | ByGateway, http.StatusForbidden, "enrolment with an account whose status is not in enrolment.eligible_statuses (paid in full, returned at lease end, closed, cancelled)"},
	{"bad_code", ByPolicy, http.StatusForbidden, "the security code typed is wrong"},
	{ReasonBadCredentials, ByPolicy, http.StatusUnauthorized, "unknown username, wrong password, or a locked profile with a wrong password"},
	{ReasonBadGrant, ByGateway, http.StatusForbidden, "a cross-host sign-in code that is malformed, unknown, used, expired or for another host"},
	{ReasonBadRequest, ByGateway, http.StatusBadRequest, "a malformed request, or (415) a body that is not JSON"},
	{"change_unsupported", ByPolicy, http.StatusForbidden, "a settings change of a kind not in settings.changes"},
	{"code_attempts_exceeded", ByPolicy, http.StatusForbidden, "the security code has used up its tries"},
	{"code_channel_unsupported", ByPolicy, http.StatusForbidden, "codes are not sent over the channel asked for (email: unless codes.email.enabled and an address is on file)"},
	{"code_expired", ByPolicy, http.StatusForbidden, "the security code is older than codes.ttl_seconds"},
	{ReasonCodeNotSent, ByGateway, http.StatusBadGateway, "the delivery provider did not take the security code; nothing was used up"},
	{"code_resend_limit", ByPolicy, http.StatusForbidden, "the challenge has used up its resends"},
	{"code_resend_too_soon", ByPolicy, http.StatusForbidden, "a resend within codes.resend_interval_seconds of the last send"},
	{"code_send_limit_address", ByPolicy, http.StatusTooManyRequests, "the client address has asked for codes.send_limits.per_address.max codes in the window"},
	{"code_send_limit_calling_code", ByPolicy, http.StatusTooManyRequests, "codes.send_limits.per_calling_code.max codes went to the number's country calling code in the window"},
	{"code_send_limit_number", ByPolicy, http.StatusTooManyRequests, "codes.send_limits.per_number.max codes went to the number (or email address) in the window"},
	{"code_send_limit_user", ByPolicy, http.StatusTooManyRequests, "codes.send_limits.per_user.max codes went to the account in the window"},
	{"consent_required", ByPolicy, http.StatusForbidden, "enrolment without consent to electronic delivery"},
	{ReasonCrossOrigin, ByGateway, http.StatusForbidden, "a state-changing request from another origin"},
	{ReasonCSRF, ByGateway, http.StatusForbidden, "a form without the right CSRF token"},
	{"enrolment_throttled", ByPolicy, http.StatusTooManyRequests, "more identity proofs for the identity or from the client address than enrolment.max_attempts_per_* allow in the window"},
	{ReasonForwardAuthRefused, ByGateway, http.StatusForbidden, "a forward-auth request from a peer outside forward_auth.trusted_networks, or about a host and path that is no route"},
	{ReasonIdentityNotVerified, ByPolicy | ByGateway, http.StatusForbidden, "enrolment or recovery identity details did not match (an enrolment for an identity that has a profile is answered alike), or an account to add is not in the customer's record"},
	{"ip_anonymous_vpn", ByPolicy, http.StatusForbidden, "the client address is an anonymous VPN that anonymizer.block blocks"},
	{"ip_hosting_provider", ByPolicy, http.StatusForbidden, "the client address is a hosting provider that anonymizer.block blocks"},
	{"ip_public_proxy", ByPolicy, http.StatusForbidden, "the client address is a public proxy that anonymizer.block blocks"},
	{"ip_residential_proxy", ByPolicy, http.StatusForbidden, "the client address is a residential proxy that anonymizer.block blocks"},
	{ReasonIPThrottled, ByPolicy, http.StatusTooManyRequests, "too many recent failures from the client address"},
	{"ip_tor_exit_node", ByPolicy, http.StatusForbidden, "the client address is a Tor exit node that anonymizer.block blocks"},
	{ReasonIPUnchecked, ByPolicy, http.StatusServiceUnavailable, "no GeoIP facts for the client address and allow_unchecked_ip is false"},
	{"ip_unknown", ByPolicy, http.StatusForbidden, "the client address could not be read; not waived by allow_unchecked_ip"},
	{ReasonNoSession, ByPolicy | ByGateway, http.StatusUnauthorized, "no session, or no account behind it"},
	{ReasonNotFound, ByGateway, http.StatusNotFound, "no such page or endpoint"},
	{ReasonOK, ByPolicy, http.StatusOK, "an approval"},
	{ReasonPasswordCommon, ByPolicy, http.StatusForbidden, "the new password is on the common or breached list"},
	{ReasonPasswordContainsName, ByPolicy, http.StatusForbidden, "the new password contains the person's first or last name"},
	{ReasonPasswordContainsUsername, ByPolicy, http.StatusForbidden, "the new password contains the username"},
	{ReasonPasswordGuessable, ByPolicy, http.StatusForbidden, "zxcvbn estimates the new password needs fewer than 10^passwords.min_guesses_log10 guesses"},
	{"password_missing", ByPolicy, http.StatusForbidden, "no new-password facts were given"},
	{ReasonPasswordTooLong, ByPolicy, http.StatusForbidden, "the new password is longer than passwords.max_length characters"},
	{ReasonPasswordTooShort, ByPolicy, http.StatusForbidden, "the new password is shorter than passwords.min_length characters"},
	{"phone_channel_unsupported", ByPolicy, http.StatusForbidden, "the phone's line type cannot take codes over this channel (e.g. SMS to a fixed line)"},
	{"phone_invalid", ByPolicy, http.StatusForbidden, "not a valid phone number"},
	{"phone_premium_rate", ByPolicy, http.StatusForbidden, "a premium-rate number, which never receives codes"},
	{"phone_toll_free", ByPolicy, http.StatusForbidden, "a toll-free number, which never receives codes"},
	{"phone_unknown", ByPolicy, http.StatusForbidden, "a number of unknown line type, which never receives codes"},
	{"phone_unsupported", ByPolicy, http.StatusForbidden, "a line type no channel in codes.line_types accepts"},
	{"phone_voip", ByPolicy, http.StatusForbidden, "a VoIP number, which never receives codes"},
	{ReasonDefaultDeny, ByPolicy, http.StatusForbidden, "no rule of the point decided"},
	{ReasonPolicyError, ByEngine, http.StatusServiceUnavailable, "the engine could not get a decision (error, undefined, malformed, panic)"},
	{ReasonProfileExists, ByPolicy | ByGateway, http.StatusForbidden, "the identity already has a profile: log in or recover (the gateway answers it as identity_not_verified, and 409 when another enrolment made the profile meanwhile)"},
	{"recovery_throttled", ByPolicy, http.StatusTooManyRequests, "more recovery identity proofs for the account or from the client address than recovery.max_attempts_per_* allow in the window"},
	{ReasonRecoveryUnavailable, ByPolicy, http.StatusForbidden, "nothing can reach the person for recovery"},
	{"route_not_permitted", ByPolicy, http.StatusForbidden, "the customer record does not hold this product"},
	{ReasonSessionExpired, ByPolicy, http.StatusUnauthorized, "the session passed its absolute limit"},
	{ReasonSessionIdle, ByPolicy, http.StatusUnauthorized, "the session passed its idle limit"},
	{"step_up_locked", ByPolicy, http.StatusForbidden, "the profile locked (or was locked) on step_up.max_consecutive_failures step-up answers in a row that did not pass; a password recovery or an administrator unlocks it"},
	{ReasonStepUpRequired, ByPolicy, http.StatusForbidden, "a step-up is needed (unknown device, sensitive path or setting); step_up lists the methods"},
	{"step_up_stale", ByPolicy, http.StatusForbidden, "the last step-up is older than the window"},
	{"step_up_unavailable", ByPolicy, http.StatusForbidden, "a step-up is needed and the account has no usable method"},
	{ReasonUnauthenticated, ByGateway, http.StatusUnauthorized, "no valid session for a request to an upstream app that needs one"},
	{ReasonUnavailable, ByGateway, http.StatusServiceUnavailable, "the store or another dependency did not answer"},
	{ReasonUpstreamUnavailable, ByGateway, http.StatusBadGateway, "the upstream app did not answer, or (504) timed out"},
	{ReasonUsernameTaken, ByPolicy, http.StatusForbidden, "the chosen username belongs to another profile"},
}

// Reasons returns every known reason code, sorted by code.
func Reasons() []Reason { return slices.Clone(reasons) }

// LookupReason returns the description of code; ok is false for a code not
// in the list (a policy's own, or a typo).
func LookupReason(code string) (r Reason, ok bool) {
	i, found := slices.BinarySearchFunc(reasons, code, func(r Reason, code string) int {
		return strings.Compare(r.Code, code)
	})
	if !found {
		return Reason{}, false
	}
	return reasons[i], true
}
