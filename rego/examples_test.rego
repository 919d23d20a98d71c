# Example inputs shared with the Go tests: testdata/policies/NAME.json holds
# examples[NAME].input and testdata/policies/NAME.expected.json holds
# examples[NAME].expected. A Go test fails when the two copies differ, so
# edit both together.
package portcullis.examples_test

clean_client := {"ip": "198.51.100.7", "facts": {"checked": true, "country": "US"}, "allow_listed": false, "recent_failures": 0}

vpn_client := {
	"ip": "203.0.113.9",
	"facts": {"checked": true, "anonymous": true, "anonymous_vpn": true, "country": "NL"},
	"allow_listed": false,
	"recent_failures": 0,
}

tor_client := {
	"ip": "203.0.113.66",
	"facts": {"checked": true, "anonymous": true, "tor_exit_node": true},
	"allow_listed": false,
	"recent_failures": 0,
}

# unknown_client came through a trusted proxy whose X-Forwarded-For did not
# parse ("1.2.3.4, garbage"): the gateway cannot tell who it is.
unknown_client := {"ip": "", "ip_unknown": true, "facts": {"checked": false}, "allow_listed": false, "recent_failures": 0}

security_phone := {"valid": true, "region": "US", "calling_code": 1, "line_type": "fixed_line_or_mobile", "source": "prefix", "masked": "********67"}

account := {
	"exists": true,
	"locked": false,
	"consecutive_failures": 0,
	"second_factors": ["sms", "voice", "totp"],
	"security_phone": security_phone,
	"email_on_file": true,
	"products": ["savings"],
}

locked_account := object.union(account, {"locked": true, "consecutive_failures": 5})

registered_device := {"recognised": true, "registered_at": 1764547200}

new_device := {"recognised": false, "registered_at": 0}

login_request := {"route": "", "host": "login.example.com", "path": "/.portcullis/login", "path_class": "", "method": "POST"}

now := 1767225600

# first_send are the send counters of a first code this hour.
first_send := {"address": 0, "user": 0, "number": 0, "calling_code": 0}

examples := {
	"clean_login": {
		"input": {"point": "login", "now": now, "client": clean_client, "device": registered_device, "account": account, "request": login_request},
		"expected": {"allow": true, "reason": "ok"},
	},
	"vpn_login": {
		"input": {"point": "login", "now": now, "client": vpn_client, "device": new_device, "account": account, "request": login_request},
		"expected": {"allow": false, "reason": "ip_anonymous_vpn", "message": "use_private_network"},
	},
	"tor_login": {
		"input": {"point": "login", "now": now, "client": tor_client, "device": new_device, "account": account, "request": login_request},
		"expected": {"allow": false, "reason": "ip_tor_exit_node", "message": "use_private_network"},
	},
	"unreadable_forwarded_login": {
		"input": {"point": "login", "now": now, "client": unknown_client, "device": new_device, "account": account, "request": login_request},
		"expected": {"allow": false, "reason": "ip_unknown", "message": "use_private_network"},
	},
	"throttled_login": {
		"input": {
			"point": "login", "now": now,
			"client": object.union(clean_client, {"recent_failures": 20}),
			"device": new_device, "account": account, "request": login_request,
		},
		"expected": {"allow": false, "reason": "ip_throttled"},
	},
	"registered_device_login_password": {
		"input": {
			"point": "login_password", "now": now, "client": clean_client, "device": registered_device,
			"account": object.union(account, {"consecutive_failures": 2}), "request": login_request,
			"attempt": {"password_ok": true},
		},
		"expected": {"allow": true, "reason": "ok", "reset_failures": true, "session_idle_seconds": 900, "session_max_seconds": 43200},
	},
	"new_device_login_password": {
		"input": {
			"point": "login_password", "now": now, "client": clean_client, "device": new_device,
			"account": account, "request": login_request, "attempt": {"password_ok": true},
		},
		"expected": {"allow": false, "reason": "step_up_required", "step_up": ["sms", "voice", "totp"]},
	},
	"fifth_wrong_password": {
		"input": {
			"point": "login_password", "now": now, "client": clean_client, "device": registered_device,
			"account": object.union(account, {"consecutive_failures": 4}), "request": login_request,
			"attempt": {"password_ok": false},
		},
		"expected": {
			"allow": false, "reason": "bad_credentials", "lock": true, "count_failure": true,
			"count_ip_failure": true, "notify": ["account_locked"],
		},
	},
	"locked_account_wrong_password": {
		"input": {
			"point": "login_password", "now": now, "client": clean_client, "device": registered_device,
			"account": locked_account, "request": login_request, "attempt": {"password_ok": false},
		},
		"expected": {"allow": false, "reason": "bad_credentials", "lock": false, "count_failure": false},
	},
	"locked_account_right_password": {
		"input": {
			"point": "login_password", "now": now, "client": clean_client, "device": registered_device,
			"account": locked_account, "request": login_request, "attempt": {"password_ok": true},
		},
		"expected": {"allow": false, "reason": "account_locked", "message": "account_locked"},
	},
	"sms_send_code": {
		"input": {
			"point": "send_code", "now": now, "client": clean_client, "device": new_device, "account": account,
			"code": {
				"purpose": "login", "channel": "sms", "phone": security_phone, "sent_at": 0, "attempts": 0, "resends": 0,
				"sends": first_send,
			},
		},
		"expected": {"allow": true, "reason": "ok", "code_ttl_seconds": 1200, "max_code_attempts": 5},
	},
	"sms_resend_code": {
		"input": {
			"point": "send_code", "now": now, "client": clean_client, "device": new_device, "account": account,
			"code": {
				"purpose": "login", "channel": "sms", "phone": security_phone, "sent_at": now - 45, "attempts": 1, "resends": 1,
				"sends": {"address": 1, "user": 2, "number": 2, "calling_code": 57},
			},
		},
		"expected": {"allow": true, "reason": "ok", "code_ttl_seconds": 1200, "max_code_resends": 3},
	},
	"number_limit_send_code": {
		"input": {
			"point": "send_code", "now": now, "client": clean_client, "device": new_device, "account": account,
			"code": {
				"purpose": "login", "channel": "voice", "phone": security_phone, "sent_at": 0, "attempts": 0, "resends": 0,
				"sends": {"address": 1, "user": 1, "number": 10, "calling_code": 212},
			},
		},
		"expected": {"allow": false, "reason": "code_send_limit_number", "message": "try_later"},
	},
	"throttled_recovery": {
		"input": {
			"point": "recover", "now": now, "client": clean_client, "device": new_device, "account": account,
			"request": {"route": "", "host": "login.example.com", "path": "/.portcullis/api/v1/recover/password/identify", "path_class": "", "method": "POST"},
			"recovery": {
				"kind": "password", "stage": "identify", "identity_verified": true, "questions_answered": true,
				"account_attempts": 6, "address_attempts": 6,
			},
		},
		"expected": {"allow": false, "reason": "recovery_throttled", "message": "try_later"},
	},
	"email_send_code": {
		"input": {
			"point": "send_code", "now": now, "client": clean_client, "device": new_device, "account": account,
			"code": {
				"purpose": "login", "channel": "email", "phone": {"valid": false, "line_type": ""},
				"sent_at": 0, "attempts": 0, "resends": 0, "sends": first_send,
			},
		},
		"expected": {"allow": false, "reason": "code_channel_unsupported", "message": "use_other_channel"},
	},
	"voip_send_code": {
		"input": {
			"point": "send_code", "now": now, "client": clean_client, "device": new_device, "account": account,
			"code": {
				"purpose": "login", "channel": "sms",
				"phone": {"valid": true, "region": "GB", "calling_code": 44, "line_type": "voip", "source": "prefix", "masked": "**********78"},
				"sent_at": 0, "attempts": 0, "resends": 0, "sends": first_send,
			},
		},
		"expected": {"allow": false, "reason": "phone_voip", "message": "phone_not_accepted"},
	},
	"expired_code": {
		"input": {
			"point": "verify_code", "now": now, "client": clean_client, "device": new_device, "account": account,
			"code": {"purpose": "login", "channel": "sms", "phone": security_phone, "sent_at": now - 1200, "attempts": 0, "resends": 0},
			"attempt": {"code_ok": true},
		},
		"expected": {"allow": false, "reason": "code_expired", "invalidate_code": true},
	},
	"stale_settings_change": {
		"input": {
			"point": "settings", "now": now, "client": clean_client, "device": registered_device, "account": account,
			"session": {"methods": ["password", "sms"], "auth_time": now - 1800, "step_up_at": now - 1800, "last_seen": now - 60, "created": now - 1800},
			"change": {"kind": "security_phone", "phone": security_phone},
		},
		"expected": {"allow": false, "reason": "step_up_stale", "step_up": ["sms", "voice", "totp"]},
	},
	"sensitive_path_access": {
		"input": {
			"point": "access", "now": now, "client": clean_client, "device": registered_device, "account": account,
			"session": {"methods": ["password"], "auth_time": now - 300, "last_seen": now - 20, "created": now - 300},
			"request": {"route": "savings", "host": "savings.example.com", "path": "/transfers/new", "path_class": "/transfers", "method": "GET"},
		},
		"expected": {"allow": false, "reason": "step_up_required", "step_up": ["sms", "voice", "totp"], "step_up_window_seconds": 600},
	},
	"vpn_session_access": {
		"input": {
			"point": "access", "now": now, "client": vpn_client, "device": registered_device, "account": account,
			"session": {"methods": ["password"], "auth_time": now - 600, "last_seen": now - 30, "created": now - 600},
			"request": {"route": "savings", "host": "savings.example.com", "path": "/accounts", "path_class": "", "method": "GET"},
		},
		"expected": {"allow": false, "reason": "ip_anonymous_vpn", "message": "use_private_network"},
	},
	"idle_session_access": {
		"input": {
			"point": "access", "now": now, "client": clean_client, "device": registered_device, "account": account,
			"session": {"methods": ["password"], "auth_time": now - 3600, "last_seen": now - 901, "created": now - 3600},
			"request": {"route": "savings", "host": "savings.example.com", "path": "/accounts", "path_class": "", "method": "GET"},
		},
		"expected": {"allow": false, "reason": "session_idle", "message": "session_ended"},
	},
}

# decided(name) is true when example name gets its expected decision.
decided(name) if {
	example := examples[name]
	decision := data.portcullis[example.input.point].decision with input as example.input
	every key, value in example.expected {
		decision[key] == value
	}
}

test_clean_login_is_allowed if decided("clean_login")

test_vpn_login_is_denied if decided("vpn_login")

test_tor_login_is_denied if decided("tor_login")

test_unreadable_forwarded_login_is_refused if decided("unreadable_forwarded_login")

test_throttled_login_is_denied if decided("throttled_login")

test_right_password_on_a_registered_device_signs_in if decided("registered_device_login_password")

test_right_password_on_a_new_device_needs_a_step_up if decided("new_device_login_password")

test_fifth_wrong_password_locks_the_account if decided("fifth_wrong_password")

test_wrong_password_on_a_locked_account_gets_the_generic_answer if decided("locked_account_wrong_password")

test_right_password_on_a_locked_account_is_told_it_is_locked if decided("locked_account_right_password")

test_sms_code_to_a_mobile_is_sent if decided("sms_send_code")

test_voip_send_code_is_denied if decided("voip_send_code")

test_resend_within_the_limits_is_sent if decided("sms_resend_code")

test_eleventh_code_to_a_number_in_an_hour_is_refused if decided("number_limit_send_code")

test_email_code_is_refused_in_shipped_data if decided("email_send_code")

test_sixth_recovery_of_an_account_in_an_hour_is_throttled if decided("throttled_recovery")

test_code_twenty_minutes_old_is_expired if decided("expired_code")

test_settings_change_after_an_old_step_up_is_refused if decided("stale_settings_change")

test_sensitive_path_access_needs_a_step_up if decided("sensitive_path_access")

test_session_moved_to_a_vpn_is_refused if decided("vpn_session_access")

test_idle_session_access_is_refused if decided("idle_session_access")

test_every_example_has_a_test if {
	every name, _ in examples {
		decided(name)
	}
}
