package portcullis.settings_test

import data.portcullis.config
import data.portcullis.settings

now := 1767225600

account := {
	"exists": true,
	"locked": false,
	"second_factors": ["sms", "totp", "questions"],
	"security_phone": {"valid": true, "line_type": "mobile"},
}

good_password := {
	"length": config.passwords.min_length, "contains_username": false, "contains_name": false,
	"common": false, "guesses_log10": config.passwords.min_guesses_log10,
}

fresh_session := {"methods": ["password", "sms"], "auth_time": now - 60, "step_up_at": now - 60, "last_seen": now - 5, "created": now - 600}

change(kind, facts, session) := {
	"point": "settings",
	"now": now,
	"client": {"ip": "198.51.100.7", "facts": {"checked": true}},
	"account": account,
	"session": session,
	"change": object.union({"kind": kind}, facts),
}

test_password_change_after_a_fresh_step_up_is_allowed_and_notified if {
	d := settings.decision with input as change("password", {"new_password": good_password}, fresh_session)
	d.allow
	d.notify == ["password_changed"]
}

test_change_without_a_step_up_needs_one if {
	d := settings.decision with input as change("security_phone", {"phone": {"valid": true, "line_type": "mobile"}}, object.remove(fresh_session, ["step_up_at"]))
	d.reason == "step_up_required"
	d.step_up == ["sms", "totp"]
}

test_change_after_an_old_step_up_needs_a_new_one if {
	d := settings.decision with input as change("username", {"username_available": true}, object.union(fresh_session, {"step_up_at": now - 601}))
	d.reason == "step_up_stale"
	d.step_up == ["sms", "totp"]
}

test_questions_do_not_count_as_a_settings_step_up if {
	d := settings.decision with input as object.union(
		change("username", {"username_available": true}, object.remove(fresh_session, ["step_up_at"])),
		{"account": {"second_factors": ["questions"]}},
	)
	d.reason == "step_up_unavailable"
}

test_voip_security_phone_is_refused if {
	settings.decision.reason == "phone_voip" with input as change("security_phone", {"phone": {"valid": true, "line_type": "voip"}}, fresh_session)
}

test_security_phone_change_is_notified if {
	settings.decision.notify == ["security_phone_changed"] with input as change("security_phone", {"phone": {"valid": true, "line_type": "mobile"}}, fresh_session)
}

test_short_new_password_is_refused if {
	short := object.union(good_password, {"length": config.passwords.min_length - 1})
	settings.decision.reason == "password_too_short" with input as change("password", {"new_password": short}, fresh_session)
}

test_taken_username_is_refused if {
	settings.decision.reason == "username_taken" with input as change("username", {"username_available": false}, fresh_session)
}

test_two_factor_change_is_notified if {
	settings.decision.notify == ["two_factor_changed"] with input as change("two_factor", {}, fresh_session)
}

test_unknown_change_is_refused if {
	settings.decision.reason == "change_unsupported" with input as change("email", {}, fresh_session)
}

test_change_without_a_session_is_refused if {
	settings.decision.reason == "no_session" with input as object.remove(change("password", {}, fresh_session), ["session"])
}

test_change_on_an_idle_session_is_refused if {
	settings.decision.reason == "session_idle" with input as change("two_factor", {}, object.union(fresh_session, {"last_seen": now - 901}))
}

test_change_on_a_locked_account_is_refused if {
	settings.decision.reason == "account_locked" with input as object.union(change("two_factor", {}, fresh_session), {"account": {"locked": true}})
}

test_change_from_a_vpn_is_refused if {
	settings.decision.reason == "ip_anonymous_vpn" with input as object.union(change("two_factor", {}, fresh_session), {"client": {"facts": {"anonymous_vpn": true}}})
}
