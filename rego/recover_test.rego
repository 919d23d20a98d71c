package portcullis.recover_test

import data.portcullis.config
import data.portcullis.recover

account := {
	"exists": true,
	"locked": false,
	"email_on_file": true,
	"security_phone": {"valid": true, "line_type": "mobile"},
}

good_password := {
	"length": config.passwords.min_length, "contains_username": false, "contains_name": false,
	"common": false, "guesses_log10": config.passwords.min_guesses_log10,
}

recovery(kind, stage, facts) := {
	"point": "recover",
	"now": 1767225600,
	"client": {"ip": "198.51.100.7", "facts": {"checked": true}, "recent_failures": 0},
	"account": account,
	"recovery": object.union(
		{
			"kind": kind, "stage": stage, "identity_verified": true, "questions_answered": true,
			"account_attempts": 1, "address_attempts": 1,
		},
		facts,
	),
}

test_verified_password_recovery_offers_codes_to_the_security_phone if {
	d := recover.decision with input as recovery("password", "identify", {})
	d.allow
	d.step_up == ["sms", "voice"]
}

test_verified_username_recovery_also_offers_email if {
	recover.decision.step_up == ["sms", "voice", "email"] with input as recovery("username", "identify", {})
}

test_recovery_without_a_usable_phone_is_sent_to_support if {
	d := recover.decision with input as object.union(recovery("password", "identify", {}), {"account": {"security_phone": {"valid": true, "line_type": "voip"}}})
	d.reason == "recovery_unavailable"
	d.message == "call_support"
}

test_unverified_identity_is_refused_and_counted if {
	d := recover.decision with input as recovery("password", "identify", {"identity_verified": false})
	d.reason == "identity_not_verified"
	d.count_ip_failure
}

test_recovery_from_tor_is_denied if {
	recover.decision.reason == "ip_tor_exit_node" with input as object.union(recovery("password", "identify", {}), {"client": {"facts": {"tor_exit_node": true}}})
}

test_recovery_from_a_throttled_address_is_denied if {
	recover.decision.reason == "ip_throttled" with input as object.union(recovery("password", "identify", {}), {"client": {"recent_failures": 20}})
}

test_completing_without_a_code_needs_a_step_up if {
	d := recover.decision with input as recovery("password", "complete", {"new_password": good_password})
	d.reason == "step_up_required"
	d.step_up == ["sms", "voice"]
}

test_password_recovery_resets_and_unlocks if {
	d := recover.decision with input as object.union(
		recovery("password", "complete", {"verified_by": "sms", "new_password": good_password}),
		{"account": {"locked": true}},
	)
	d.allow
	d.unlock
	d.reset_failures
	d.notify == ["password_changed", "account_unlocked"]
}

test_password_recovery_of_an_unlocked_account_notifies_the_change if {
	recover.decision.notify == ["password_changed"] with input as recovery("password", "complete", {"verified_by": "voice", "new_password": good_password})
}

test_password_recovery_refuses_a_weak_password if {
	recover.decision.reason == "password_common" with input as recovery("password", "complete", {"verified_by": "sms", "new_password": object.union(good_password, {"common": true})})
}

test_username_recovery_by_email_completes if {
	d := recover.decision with input as recovery("username", "complete", {"verified_by": "email"})
	d.allow
	d.notify == ["username_recovered"]
}

test_password_recovery_by_email_is_not_accepted if {
	recover.decision.reason == "step_up_required" with input as recovery("password", "complete", {"verified_by": "email", "new_password": good_password})
}

test_unknown_kind_is_denied if {
	not recover.decision.allow with input as recovery("pin", "identify", {})
}

test_attempts_up_to_the_account_limit_are_judged if {
	recover.decision.allow with input as recovery("password", "identify", {"account_attempts": config.recovery.max_attempts_per_account})
}

test_attempt_past_the_account_limit_is_throttled if {
	d := recover.decision with input as recovery("username", "identify", {"account_attempts": config.recovery.max_attempts_per_account + 1})
	d.reason == "recovery_throttled"
	d.message == "try_later"
	not d.step_up
}

test_attempt_past_the_address_limit_is_throttled if {
	recover.decision.reason == "recovery_throttled" with input as recovery("password", "identify", {"address_attempts": config.recovery.max_attempts_per_address + 1})
}

test_throttle_comes_before_the_identity_check if {
	recover.decision.reason == "recovery_throttled" with input as recovery("password", "identify", {"identity_verified": false, "account_attempts": 99})
}

test_uncounted_attempt_is_throttled if {
	base := recovery("username", "identify", {})
	d := recover.decision with input as object.union(
		object.remove(base, ["recovery"]),
		{"recovery": object.remove(base.recovery, ["account_attempts"])},
	)
	d.reason == "recovery_throttled"
}

test_uncounted_address_attempt_is_throttled if {
	base := recovery("password", "identify", {})
	recover.decision.reason == "recovery_throttled" with input as object.union(
		object.remove(base, ["recovery"]),
		{"recovery": object.remove(base.recovery, ["address_attempts"])},
	)
}

test_account_limit_is_policy_data if {
	recover.decision.reason == "recovery_throttled" with input as recovery("password", "identify", {"account_attempts": 2})
		with data.portcullis.config.recovery.max_attempts_per_account as 1
}

test_completing_is_not_throttled if {
	recover.decision.allow with input as recovery("username", "complete", {"verified_by": "sms", "account_attempts": 99, "address_attempts": 99})
}

test_password_recovery_without_the_identity_questions_is_not_verified if {
	d := recover.decision with input as recovery("password", "identify", {"questions_answered": false})
	d.reason == "identity_not_verified"
	d.count_ip_failure
}

test_password_recovery_needs_no_questions_when_the_data_says_so if {
	d := recover.decision with input as recovery("password", "identify", {"questions_answered": false})
		with data.portcullis.config.recovery.password_identity_questions as false
	d.allow
	d.step_up == ["sms", "voice"]
}

test_unmatched_identity_is_refused_whether_or_not_questions_are_asked if {
	d := recover.decision with input as recovery("password", "identify", {"identity_verified": false, "questions_answered": false})
		with data.portcullis.config.recovery.password_identity_questions as false
	d.reason == "identity_not_verified"
}

test_username_recovery_ignores_the_password_questions_setting if {
	recover.decision.allow with input as recovery("username", "identify", {"questions_answered": false})
}

test_completing_a_password_recovery_needs_the_questions if {
	recover.decision.reason == "identity_not_verified" with input as recovery("password", "complete", {"verified_by": "sms", "new_password": good_password, "questions_answered": false})
}

test_unknown_stage_is_denied_by_default if {
	recover.decision.reason == "policy_default_deny" with input as recovery("username", "finish", {})
}
