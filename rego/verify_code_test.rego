package portcullis.verify_code_test

import data.portcullis.verify_code

sent_at := 1767225600

attempt(code_ok, seconds_later, attempts) := {
	"point": "verify_code",
	"now": sent_at + seconds_later,
	"device": {"recognised": false},
	"code": {"purpose": "login", "channel": "sms", "sent_at": sent_at, "attempts": attempts, "resends": 0},
	"attempt": {"code_ok": code_ok},
}

day := 86400

# on_device(registered_days_ago) is a right code typed on a device registered
# that many days ago.
on_device(registered_days_ago) := object.union(attempt(true, 60, 0), {"device": {
	"recognised": true,
	"registered_at": sent_at - (registered_days_ago * day),
}})

test_right_code_within_twenty_minutes_is_accepted_once if {
	d := verify_code.decision with input as attempt(true, 1199, 0)
	d.allow
	d.invalidate_code
	d.offer_device_registration
}

test_device_registration_is_offered_for_180_days if {
	d := verify_code.decision with input as attempt(true, 60, 0)
	d.device_lifetime_seconds == 180 * day
}

test_device_lifetime_is_data if {
	d := verify_code.decision with input as attempt(true, 60, 0)
		with data.portcullis.config.devices.lifetime_seconds as 30 * day
	d.device_lifetime_seconds == 30 * day
}

test_right_code_on_a_registered_device_offers_no_registration if {
	d := verify_code.decision with input as on_device(30)
	d.allow
	not d.offer_device_registration
	not d.device_lifetime_seconds
}

test_device_registered_too_long_ago_is_offered_registration_again if {
	d := verify_code.decision with input as on_device(181)
	d.allow
	d.offer_device_registration
	d.device_lifetime_seconds == 180 * day
}

test_code_for_a_settings_change_offers_no_registration if {
	d := verify_code.decision with input as object.union(attempt(true, 60, 0), {"code": {"purpose": "settings"}})
	not d.offer_device_registration
	not d.device_lifetime_seconds
}

test_registration_switched_off_offers_nothing if {
	d := verify_code.decision with input as attempt(true, 60, 0)
		with data.portcullis.config.devices.offer_registration as false
	d.allow
	not d.offer_device_registration
	not d.device_lifetime_seconds
}

test_refusals_carry_no_device_lifetime if {
	not verify_code.decision.device_lifetime_seconds with input as attempt(false, 60, 0)
}

test_code_expires_twenty_minutes_after_sending if {
	d := verify_code.decision with input as attempt(true, 1200, 0)
	not d.allow
	d.reason == "code_expired"
	d.invalidate_code
}

test_wrong_code_is_refused_and_counted_against_the_address if {
	d := verify_code.decision with input as attempt(false, 60, 0)
	d.reason == "bad_code"
	d.count_ip_failure
	not d.invalidate_code
}

test_fifth_wrong_code_invalidates_the_code if {
	d := verify_code.decision with input as attempt(false, 60, 4)
	d.reason == "bad_code"
	d.invalidate_code
}

test_code_with_no_tries_left_is_refused_even_if_right if {
	d := verify_code.decision with input as attempt(true, 60, 5)
	d.reason == "code_attempts_exceeded"
	d.invalidate_code
}

test_missing_result_is_denied_by_default if {
	verify_code.decision.reason == "policy_default_deny" with input as {"point": "verify_code", "now": sent_at, "code": {"sent_at": sent_at, "attempts": 0}}
}

test_the_account_wide_failure_budget_ends_guessing if {
	d := verify_code.decision with input as object.union(attempt(true, 60, 0), {"account": {"recent_step_up_failures": 10}})
	not d.allow
	d.reason == "code_attempts_exceeded"
	d.invalidate_code
}

test_failures_under_the_account_budget_do_not_stop_a_right_code if {
	d := verify_code.decision with input as object.union(attempt(true, 60, 0), {"account": {"recent_step_up_failures": 9}})
	d.allow
}
