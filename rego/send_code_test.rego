package portcullis.send_code_test

import data.portcullis.send_code

phone(line_type) := {"valid": true, "region": "GB", "line_type": line_type, "source": "prefix", "masked": "*********78"}

request(channel, line_type) := {
	"point": "send_code",
	"now": 1767225600,
	"client": {"ip": "198.51.100.7", "facts": {"checked": true}},
	"account": {"exists": true, "locked": false},
	"code": {
		"purpose": "login", "channel": channel, "phone": phone(line_type), "sent_at": 0, "attempts": 0, "resends": 0,
		"sends": {"address": 0, "user": 0, "number": 0, "calling_code": 0},
	},
}

resend_request(sent_at, resends) := object.union(request("sms", "mobile"), {"code": {"sent_at": sent_at, "resends": resends}})

# sent(channel, counts) is a first send whose counters already hold counts.
sent(channel, counts) := object.union(request(channel, "mobile"), {"code": {"sends": counts}})

# email_request is an email code to an account with an address on file.
email_request := object.union(request("email", ""), {
	"account": {"email_on_file": true},
	"code": {"phone": {"valid": false, "line_type": ""}},
})

email_enabled := {"enabled": true}

test_sms_to_a_mobile_is_sent_with_a_twenty_minute_lifetime if {
	d := send_code.decision with input as request("sms", "mobile")
	d.allow
	d.code_ttl_seconds == 1200
	d.max_code_attempts == 5
	d.max_code_resends == 3
	d.resend_after_seconds == 30
}

test_voice_call_to_a_fixed_line_is_sent if {
	send_code.decision.allow with input as request("voice", "fixed_line")
}

test_sms_to_a_fixed_line_is_refused if {
	d := send_code.decision with input as request("sms", "fixed_line")
	d.reason == "phone_channel_unsupported"
	d.message == "use_other_channel"
}

test_voip_send_code_is_denied if {
	d := send_code.decision with input as request("sms", "voip")
	not d.allow
	d.reason == "phone_voip"
}

test_premium_rate_number_is_refused if {
	send_code.decision.reason == "phone_premium_rate" with input as request("voice", "premium_rate")
}

test_toll_free_number_is_refused if {
	send_code.decision.reason == "phone_toll_free" with input as request("voice", "toll_free")
}

test_unknown_line_type_is_refused if {
	send_code.decision.reason == "phone_unknown" with input as request("sms", "unknown")
}

test_invalid_number_is_refused if {
	send_code.decision.reason == "phone_invalid" with input as object.union(request("sms", "mobile"), {"code": {"phone": {"valid": false}}})
}

test_code_lifetime_is_data if {
	send_code.decision.code_ttl_seconds == 600 with input as request("sms", "mobile")
		with data.portcullis.config.codes.ttl_seconds as 600
}

test_resend_is_allowed_after_the_interval if {
	send_code.decision.allow with input as resend_request(1767225570, 0)
}

test_resend_too_soon_is_refused if {
	send_code.decision.reason == "code_resend_too_soon" with input as resend_request(1767225571, 0)
}

test_fourth_resend_is_refused if {
	send_code.decision.reason == "code_resend_limit" with input as resend_request(1767225000, 3)
}

test_code_is_not_sent_from_a_vpn if {
	send_code.decision.reason == "ip_anonymous_vpn" with input as object.union(request("sms", "mobile"), {"client": {"facts": {"anonymous_vpn": true}}})
}

test_login_code_is_not_sent_for_a_locked_account if {
	send_code.decision.reason == "account_locked" with input as object.union(request("sms", "mobile"), {"account": {"locked": true}})
}

test_settings_code_is_not_sent_for_a_locked_account if {
	d := send_code.decision with input as object.union(request("sms", "mobile"), {"account": {"locked": true}, "code": {"purpose": "settings"}})
	d.reason == "account_locked"
}

test_recovery_code_is_sent_for_a_locked_account if {
	send_code.decision.allow with input as object.union(request("sms", "mobile"), {"account": {"locked": true}, "code": {"purpose": "recover"}})
}

test_missing_code_is_denied_by_default if {
	send_code.decision.reason == "policy_default_deny" with input as {"point": "send_code", "client": {"facts": {"checked": true}}}
}

test_send_below_every_limit_is_allowed if {
	send_code.decision.allow with input as sent("sms", {"address": 19, "user": 9, "number": 9, "calling_code": 499})
}

test_twenty_first_send_from_an_address_in_an_hour_is_refused if {
	d := send_code.decision with input as sent("sms", {"address": 20, "user": 0, "number": 0, "calling_code": 0})
	not d.allow
	d.reason == "code_send_limit_address"
	d.message == "try_later"
}

test_eleventh_send_for_an_account_in_an_hour_is_refused if {
	d := send_code.decision with input as sent("voice", {"address": 0, "user": 10, "number": 0, "calling_code": 0})
	d.reason == "code_send_limit_user"
	d.message == "try_later"
}

test_eleventh_send_to_a_number_in_an_hour_is_refused if {
	d := send_code.decision with input as sent("sms", {"address": 0, "user": 0, "number": 10, "calling_code": 0})
	d.reason == "code_send_limit_number"
	d.message == "try_later"
}

test_sends_to_a_calling_code_are_capped if {
	d := send_code.decision with input as sent("sms", {"address": 0, "user": 0, "number": 0, "calling_code": 500})
	d.reason == "code_send_limit_calling_code"
	d.message == "try_later"
}

test_send_limits_are_reported_address_user_number_calling_code if {
	all := {"address": 20, "user": 10, "number": 10, "calling_code": 500}
	send_code.decision.reason == "code_send_limit_address" with input as sent("sms", all)
	send_code.decision.reason == "code_send_limit_user" with input as sent("sms", object.union(all, {"address": 0}))
	send_code.decision.reason == "code_send_limit_number" with input as sent("sms", object.union(all, {"address": 0, "user": 0}))
}

test_send_limits_come_after_the_phone_and_resend_checks if {
	full := {"address": 20, "user": 10, "number": 10, "calling_code": 500}
	send_code.decision.reason == "phone_voip" with input as object.union(request("sms", "voip"), {"code": {"sends": full}})
	send_code.decision.reason == "code_resend_too_soon" with input as object.union(resend_request(1767225590, 0), {"code": {"sends": full}})
}

test_send_limits_are_data if {
	counts := {"address": 2, "user": 0, "number": 0, "calling_code": 0}
	send_code.decision.reason == "code_send_limit_address" with input as sent("sms", counts)
		with data.portcullis.config.codes.send_limits.per_address.max as 2
	send_code.decision.allow with input as sent("sms", counts)
		with data.portcullis.config.codes.send_limits.per_address.max as 3
}

test_a_zero_limit_refuses_every_send if {
	send_code.decision.reason == "code_send_limit_calling_code" with input as sent("sms", {"address": 0, "user": 0, "number": 0, "calling_code": 0})
		with data.portcullis.config.codes.send_limits.per_calling_code.max as 0
}

test_send_without_counts_is_refused if {
	d := send_code.decision with input as json.remove(request("sms", "mobile"), ["code/sends/calling_code"])
	d.reason == "code_send_limit_calling_code"
	send_code.decision.reason == "code_send_limit_address" with input as json.remove(request("sms", "mobile"), ["code/sends"])
	send_code.decision.reason == "code_send_limit_user" with input as object.union(request("sms", "mobile"), {"code": {"sends": {"user": "0"}}})
}

test_email_code_is_refused_in_shipped_data if {
	d := send_code.decision with input as email_request
	not d.allow
	d.reason == "code_channel_unsupported"
	d.message == "use_other_channel"
}

test_email_code_is_sent_when_enabled_and_an_address_is_on_file if {
	d := send_code.decision with input as email_request with data.portcullis.config.codes.email as email_enabled
	d.allow
	d.code_ttl_seconds == 1200
}

test_email_code_needs_an_address_on_file if {
	send_code.decision.reason == "code_channel_unsupported" with input as object.union(email_request, {"account": {"email_on_file": false}})
		with data.portcullis.config.codes.email as email_enabled
}

test_email_code_ignores_the_phone if {
	send_code.decision.allow with input as object.union(email_request, {"code": {"phone": phone("voip")}})
		with data.portcullis.config.codes.email as email_enabled
}

test_email_code_is_limited_per_address_account_and_destination if {
	send_code.decision.reason == "code_send_limit_address" with input as object.union(email_request, {"code": {"sends": {"address": 20}}})
		with data.portcullis.config.codes.email as email_enabled
	send_code.decision.reason == "code_send_limit_user" with input as object.union(email_request, {"code": {"sends": {"user": 10}}})
		with data.portcullis.config.codes.email as email_enabled
	send_code.decision.reason == "code_send_limit_number" with input as object.union(email_request, {"code": {"sends": {"number": 10}}})
		with data.portcullis.config.codes.email as email_enabled
}

test_email_code_has_no_calling_code_limit if {
	send_code.decision.allow with input as object.union(email_request, {"code": {"sends": {"calling_code": 500}}})
		with data.portcullis.config.codes.email as email_enabled
	send_code.decision.allow with input as json.remove(email_request, ["code/sends/calling_code"])
		with data.portcullis.config.codes.email as email_enabled
}

test_email_code_still_obeys_the_resend_rules if {
	send_code.decision.reason == "code_resend_too_soon" with input as object.union(email_request, {"code": {"sent_at": 1767225590}})
		with data.portcullis.config.codes.email as email_enabled
}

test_login_email_code_is_not_sent_for_a_locked_account if {
	send_code.decision.reason == "account_locked" with input as object.union(email_request, {"account": {"locked": true}})
		with data.portcullis.config.codes.email as email_enabled
}

test_unknown_channel_is_refused if {
	send_code.decision.reason == "code_channel_unsupported" with input as request("fax", "mobile")
}
