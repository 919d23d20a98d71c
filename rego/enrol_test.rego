package portcullis.enrol_test

import data.portcullis.config
import data.portcullis.enrol

client := {"ip": "198.51.100.7", "facts": {"checked": true}, "recent_failures": 0}

good_password := {
	"length": config.passwords.min_length, "contains_username": false, "contains_name": false,
	"common": false, "guesses_log10": config.passwords.min_guesses_log10,
}

stage(name, facts) := {
	"point": "enrol",
	"now": 1767225600,
	"client": client,
	"enrolment": object.union({"stage": name}, facts),
}

identify := stage("identify", {
	"identity_verified": true, "identity_has_profile": false, "account_status": "open",
	"identity_attempts": 1, "address_attempts": 1,
})

# identify_with(facts) is the identify stage with facts changed.
identify_with(facts) := object.union(identify, {"enrolment": facts})

credentials := stage("credentials", {"username_available": true, "new_password": good_password, "consent": true})

test_verified_identity_without_a_profile_may_enrol if {
	enrol.decision.allow with input as identify
}

test_unverified_identity_is_refused_and_counted if {
	d := enrol.decision with input as identify_with({"identity_verified": false, "account_status": ""})
	d.reason == "identity_not_verified"
	d.count_ip_failure
}

test_identity_with_a_profile_is_sent_to_login_or_recovery if {
	d := enrol.decision with input as identify_with({"identity_has_profile": true})
	d.reason == "profile_exists"
	d.message == "profile_exists"
	d.count_ip_failure
}

test_enrolment_from_a_vpn_is_denied if {
	enrol.decision.reason == "ip_anonymous_vpn" with input as object.union(identify, {"client": {"facts": {"anonymous_vpn": true}}})
}

test_enrolment_from_a_throttled_address_is_denied if {
	enrol.decision.reason == "ip_throttled" with input as object.union(identify, {"client": {"recent_failures": 25}})
}

test_good_credentials_with_consent_are_accepted if {
	enrol.decision.allow with input as credentials
}

test_taken_username_is_refused if {
	enrol.decision.reason == "username_taken" with input as object.union(credentials, {"enrolment": {"username_available": false}})
}

test_short_password_is_refused if {
	short := {"length": config.passwords.min_length - 1}
	enrol.decision.reason == "password_too_short" with input as object.union(credentials, {"enrolment": {"new_password": short}})
}

test_missing_password_facts_are_refused if {
	enrol.decision.reason == "password_missing" with input as stage("credentials", {"username_available": true, "consent": true})
}

test_missing_consent_is_refused if {
	enrol.decision.reason == "consent_required" with input as object.union(credentials, {"enrolment": {"consent": false}})
}

test_mobile_security_phone_is_accepted if {
	enrol.decision.allow with input as stage("phone", {"phone": {"valid": true, "line_type": "mobile"}})
}

test_voip_security_phone_is_refused if {
	enrol.decision.reason == "phone_voip" with input as stage("phone", {"phone": {"valid": true, "line_type": "voip"}})
}

test_unknown_stage_is_denied_by_default if {
	enrol.decision.reason == "policy_default_deny" with input as stage("finish", {})
}

test_account_paid_in_full_is_not_eligible if {
	d := enrol.decision with input as identify_with({"account_status": "paid_in_full"})
	d.reason == "account_not_eligible"
	d.message == "account_not_eligible"
	not d.count_ip_failure
}

test_every_shipped_ineligible_status_is_refused if {
	every status in ["paid_in_full", "lease_returned", "closed", "cancelled", ""] {
		enrol.decision.reason == "account_not_eligible" with input as identify_with({"account_status": status})
	}
}

test_eligible_statuses_are_policy_data if {
	enrol.decision.allow with input as identify_with({"account_status": "paid_in_full"})
		with data.portcullis.config.enrolment.eligible_statuses as ["open", "paid_in_full"]
}

test_identity_with_a_profile_is_answered_before_eligibility if {
	enrol.decision.reason == "profile_exists" with input as identify_with({"identity_has_profile": true, "account_status": "closed"})
}

test_attempts_up_to_the_identity_limit_are_judged if {
	enrol.decision.allow with input as identify_with({"identity_attempts": config.enrolment.max_attempts_per_identity})
}

test_attempt_past_the_identity_limit_is_throttled if {
	d := enrol.decision with input as identify_with({"identity_attempts": config.enrolment.max_attempts_per_identity + 1})
	d.reason == "enrolment_throttled"
	d.message == "try_later"
}

test_attempt_past_the_address_limit_is_throttled if {
	enrol.decision.reason == "enrolment_throttled" with input as identify_with({"address_attempts": config.enrolment.max_attempts_per_address + 1})
}

test_throttle_is_judged_before_the_identity if {
	enrol.decision.reason == "enrolment_throttled" with input as identify_with({"identity_verified": false, "identity_attempts": 99})
}

test_uncounted_attempt_is_throttled if {
	enrol.decision.reason == "enrolment_throttled" with input as stage("identify", {"identity_verified": true, "account_status": "open"})
}

test_identity_limit_is_policy_data if {
	enrol.decision.reason == "enrolment_throttled" with input as identify_with({"identity_attempts": 2})
		with data.portcullis.config.enrolment.max_attempts_per_identity as 1
}
