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

# in_a_row(code_ok, n) is an answer after n step-up answers in a row that did
# not pass.
in_a_row(code_ok, n) := object.union(attempt(code_ok, 60, 0), {"account": {"exists": true, "consecutive_step_up_failures": n}})

test_wrong_answer_under_the_cap_is_only_refused if {
	d := verify_code.decision with input as in_a_row(false, 8)
	d.reason == "bad_code"
	not d.lock
}

test_the_tenth_wrong_answer_in_a_row_locks_the_profile if {
	d := verify_code.decision with input as in_a_row(false, 9)
	not d.allow
	d.reason == "step_up_locked"
	d.message == "step_up_locked"
	d.lock
	d.notify == ["account_locked"]
	d.invalidate_code
	d.count_ip_failure
}

test_right_answer_under_the_cap_passes if {
	d := verify_code.decision with input as in_a_row(true, 9)
	d.allow
	not d.lock
}

test_nothing_is_judged_once_the_cap_is_reached if {
	d := verify_code.decision with input as in_a_row(true, 10)
	not d.allow
	d.reason == "step_up_locked"
	d.lock
}

test_an_expired_code_that_reaches_the_cap_locks if {
	d := verify_code.decision with input as object.union(in_a_row(true, 9), {"now": sent_at + 1200})
	d.reason == "step_up_locked"
	d.lock
}

test_the_cap_counts_over_windows_not_within_them if {
	# The hourly throttle has lapsed (no recent failures), the cap has not.
	d := verify_code.decision with input as object.union(in_a_row(false, 9), {"account": {"recent_step_up_failures": 0}})
	d.reason == "step_up_locked"
}

test_the_cap_is_data if {
	d := verify_code.decision with input as in_a_row(false, 9)
		with data.portcullis.config.step_up.max_consecutive_failures as 20
	d.reason == "bad_code"
	not d.lock
	e := verify_code.decision with input as in_a_row(false, 19)
		with data.portcullis.config.step_up.max_consecutive_failures as 20
	e.lock
}

test_settings_step_up_answers_count_toward_the_cap if {
	d := verify_code.decision with input as object.union(in_a_row(false, 9), {"code": {"purpose": "settings"}})
	d.reason == "step_up_locked"
	d.lock
}

test_codes_of_other_flows_are_not_capped if {
	d := verify_code.decision with input as object.union(in_a_row(false, 50), {"code": {"purpose": "recover"}})
	d.reason == "bad_code"
	not d.lock
}

test_a_locked_profile_cannot_step_up if {
	d := verify_code.decision with input as object.union(attempt(true, 60, 0), {"account": {"exists": true, "locked": true}})
	not d.allow
	d.reason == "account_locked"
	not d.lock
}

test_a_locked_profile_can_still_recover if {
	d := verify_code.decision with input as object.union(attempt(true, 60, 0), {"account": {"locked": true}, "code": {"purpose": "recover"}})
	d.allow
}
