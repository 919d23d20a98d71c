# Building blocks shared by every decision point: the shape of a refusal and
# of an approval, and the message key the gateway shows for each reason.
package portcullis.outcome

# messages maps a reason code to the message key the gateway turns into text.
# A reason without an entry gets "generic_denied".
messages := {
	"ok": "",
	"policy_default_deny": "generic_denied",
	"policy_error": "try_later",
	"ip_anonymous_vpn": "use_private_network",
	"ip_public_proxy": "use_private_network",
	"ip_tor_exit_node": "use_private_network",
	"ip_hosting_provider": "use_private_network",
	"ip_residential_proxy": "use_private_network",
	"ip_unchecked": "try_later",
	"ip_unknown": "use_private_network",
	"ip_throttled": "try_later",
	"account_locked": "account_locked",
	"bad_credentials": "bad_credentials",
	"step_up_locked": "step_up_locked",
	"step_up_required": "step_up_required",
	"step_up_stale": "step_up_required",
	"step_up_unavailable": "call_support",
	"phone_voip": "phone_not_accepted",
	"phone_premium_rate": "phone_not_accepted",
	"phone_toll_free": "phone_not_accepted",
	"phone_invalid": "phone_invalid",
	"phone_unknown": "phone_not_accepted",
	"phone_unsupported": "phone_not_accepted",
	"phone_channel_unsupported": "use_other_channel",
	"code_channel_unsupported": "use_other_channel",
	"code_resend_limit": "call_support",
	"code_resend_too_soon": "wait_before_resend",
	"code_send_limit_address": "try_later",
	"code_send_limit_user": "try_later",
	"code_send_limit_number": "try_later",
	"code_send_limit_calling_code": "try_later",
	"code_expired": "code_expired",
	"code_attempts_exceeded": "code_expired",
	"bad_code": "bad_code",
	"identity_not_verified": "identity_not_verified",
	"profile_exists": "profile_exists",
	"account_not_eligible": "account_not_eligible",
	"enrolment_throttled": "try_later",
	"recovery_throttled": "try_later",
	"username_taken": "username_taken",
	"consent_required": "consent_required",
	"password_missing": "password_rules",
	"password_too_short": "password_too_short",
	"password_too_long": "password_too_long",
	"password_contains_username": "password_contains_username",
	"password_contains_name": "password_contains_name",
	"password_common": "password_common",
	"password_guessable": "password_guessable",
	"recovery_unavailable": "call_support",
	"change_unsupported": "generic_denied",
	"no_session": "login_required",
	"session_idle": "session_ended",
	"session_expired": "session_ended",
	"route_not_permitted": "not_permitted",
}

# deny(reason) is a refusal carrying the message key for reason.
deny(reason) := {
	"allow": false,
	"reason": reason,
	"message": object.get(messages, reason, "generic_denied"),
}

# allowed is an approval; points add their own values with object.union.
allowed := {"allow": true, "reason": "ok", "message": ""}
