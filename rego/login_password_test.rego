package portcullis.login_password_test

import data.portcullis.login_password

mobile := {"valid": true, "region": "US", "line_type": "fixed_line_or_mobile", "masked": "********34"}

account := {
	"exists": true,
	"locked": false,
	"consecutive_failures": 0,
	"second_factors": ["sms", "voice", "totp"],
	"security_phone": mobile,
}

now := 1767225600

day := 86400

# device(recognised) is a device registered 30 days ago, or none.
device(true) := {"recognised": true, "registered_at": now - (30 * day)}

device(false) := {"recognised": false, "registered_at": 0}

attempt(password_ok, acct, recognised) := {
	"point": "login_password",
	"now": now,
	"client": {"ip": "198.51.100.7", "facts": {"checked": true}, "recent_failures": 0},
	"device": device(recognised),
	"account": acct,
	"attempt": {"password_ok": password_ok},
}

# registered(days_ago) is a right password on a device registered days_ago.
registered(days_ago) := object.union(attempt(true, account, true), {"device": {"registered_at": now - (days_ago * day)}})

with_failures(n) := object.union(account, {"consecutive_failures": n})

locked := object.union(account, {"locked": true, "consecutive_failures": 5})

test_right_password_on_a_registered_device_signs_in if {
	d := login_password.decision with input as attempt(true, account, true)
	d.allow
	d.reset_failures
	d.session_idle_seconds == 900
	d.session_max_seconds == 43200
}

test_right_password_on_an_unknown_device_needs_a_step_up if {
	d := login_password.decision with input as attempt(true, account, false)
	not d.allow
	d.reason == "step_up_required"
	d.step_up == ["sms", "voice", "totp"]
	d.reset_failures
}

test_device_registered_180_days_ago_still_signs_in if {
	login_password.decision.allow with input as registered(180)
}

test_device_registered_longer_ago_than_its_lifetime_needs_a_step_up if {
	d := login_password.decision with input as object.union(registered(180), {"device": {"registered_at": (now - (180 * day)) - 1}})
	not d.allow
	d.reason == "step_up_required"
	d.step_up == ["sms", "voice", "totp"]
}

test_device_lifetime_is_data if {
	d := login_password.decision with input as registered(31)
		with data.portcullis.config.devices.lifetime_seconds as 30 * day
	d.reason == "step_up_required"
}

test_recognised_device_without_a_registration_time_needs_a_step_up if {
	login_password.decision.reason == "step_up_required" with input as object.union(attempt(true, account, false), {"device": {"recognised": true}})
	login_password.decision.reason == "step_up_required" with input as json.remove(attempt(true, account, true), ["device/registered_at"])
}

test_email_is_offered_last_when_enabled_and_on_file if {
	d := login_password.decision with input as attempt(true, object.union(account, {"email_on_file": true}), false)
		with data.portcullis.config.codes.email.enabled as true
	d.step_up == ["sms", "voice", "totp", "email"]
}

test_email_is_not_offered_in_shipped_data if {
	d := login_password.decision with input as attempt(true, object.union(account, {"email_on_file": true}), false)
	d.step_up == ["sms", "voice", "totp"]
}

test_email_alone_is_a_step_up_when_enabled if {
	d := login_password.decision with input as attempt(true, {"exists": true, "second_factors": [], "email_on_file": true}, false)
		with data.portcullis.config.codes.email.enabled as true
		with data.portcullis.config.step_up.allow_without_second_factor as false
	d.reason == "step_up_required"
	d.step_up == ["email"]
}

test_step_up_order_is_data if {
	d := login_password.decision with input as attempt(true, account, false)
		with data.portcullis.config.step_up.methods as ["totp", "sms"]
	d.step_up == ["totp", "sms"]
}

test_account_without_second_factor_cannot_sign_in_on_an_unknown_device if {
	d := login_password.decision with input as attempt(true, object.union(account, {"second_factors": []}), false)
	d.reason == "step_up_unavailable"
	d.message == "call_support"
	d.reset_failures
}

test_account_without_second_factor_signs_in_where_the_data_allows_it if {
	d := login_password.decision with input as attempt(true, object.union(account, {"second_factors": []}), false)
		with data.portcullis.config.step_up.allow_without_second_factor as true
	d.allow
	d.reset_failures
}

test_wrong_password_counts_a_failure if {
	d := login_password.decision with input as attempt(false, account, true)
	not d.allow
	d.reason == "bad_credentials"
	d.count_failure
	d.count_ip_failure
	d.ip_failure_window_seconds == 900
	not d.lock
	d.notify == []
}

test_fourth_wrong_password_in_a_row_does_not_lock if {
	not login_password.decision.lock with input as attempt(false, with_failures(3), true)
}

test_fifth_wrong_password_in_a_row_locks if {
	d := login_password.decision with input as attempt(false, with_failures(4), true)
	d.reason == "bad_credentials"
	d.lock
	d.notify == ["account_locked"]
}

test_lockout_threshold_is_data if {
	login_password.decision.lock with input as attempt(false, with_failures(2), true)
		with data.portcullis.config.lockout.max_consecutive_failures as 3
}

test_right_password_resets_the_count if {
	login_password.decision.reset_failures with input as attempt(true, with_failures(4), true)
}

test_wrong_password_on_a_locked_account_gives_the_generic_answer if {
	d := login_password.decision with input as attempt(false, locked, true)
	d.reason == "bad_credentials"
	not d.count_failure
	not d.lock
	d.count_ip_failure
}

test_right_password_on_a_locked_account_is_told_it_is_locked if {
	d := login_password.decision with input as attempt(true, locked, true)
	not d.allow
	d.reason == "account_locked"
}

test_unknown_account_gives_the_generic_answer if {
	d := login_password.decision with input as attempt(false, {"exists": false}, false)
	d.reason == "bad_credentials"
	not d.count_failure
	d.count_ip_failure
}

test_unknown_account_with_a_matching_password_is_still_refused if {
	login_password.decision.reason == "bad_credentials" with input as attempt(true, {"exists": false}, false)
}

test_missing_attempt_is_denied_by_default if {
	login_password.decision.reason == "policy_default_deny" with input as {"point": "login_password", "account": account}
}
