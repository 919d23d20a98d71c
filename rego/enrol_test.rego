package portcullis.enrol_test

import data.portcullis.config
import data.portcullis.enrol

client := {"ip": "198.51.100.7", "facts": {"checked": true}, "recent_failures": 0}

good_password := {"length": config.passwords.min_length, "contains_username": false, "common": false}

stage(name, facts) := {
	"point": "enrol",
	"now": 1767225600,
	"client": client,
	"enrolment": object.union({"stage": name}, facts),
}

identify := stage("identify", {"identity_verified": true, "identity_has_profile": false})

credentials := stage("credentials", {"username_available": true, "new_password": good_password, "consent": true})

test_verified_identity_without_a_profile_may_enrol if {
	enrol.decision.allow with input as identify
}

test_unverified_identity_is_refused_and_counted if {
	d := enrol.decision with input as stage("identify", {"identity_verified": false})
	d.reason == "identity_not_verified"
	d.count_ip_failure
}

test_identity_with_a_profile_is_sent_to_login_or_recovery if {
	d := enrol.decision with input as stage("identify", {"identity_verified": true, "identity_has_profile": true})
	d.reason == "profile_exists"
	d.message == "profile_exists"
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
