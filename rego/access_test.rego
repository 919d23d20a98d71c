package portcullis.access_test

import data.portcullis.access

now := 1767225600

account := {
	"exists": true,
	"locked": false,
	"products": ["savings", "brokerage"],
	"second_factors": ["sms", "totp"],
	"security_phone": {"valid": true, "line_type": "mobile"},
}

live := {"methods": ["password"], "auth_time": now - 600, "last_seen": now - 30, "created": now - 600}

stepped_up := object.union(live, {"methods": ["password", "sms"], "step_up_at": now - 60})

clean_client := {"ip": "198.51.100.7", "facts": {"checked": true, "country": "US"}, "allow_listed": false}

request(route, method, path, session) := {
	"point": "access",
	"now": now,
	"client": clean_client,
	"account": account,
	"session": session,
	"request": {"route": route, "host": "savings.example.com", "method": method, "path": path, "path_class": class(path)},
}

# class stands in for the gateway's prefix matching in these tests.
class(path) := "/transfers" if {
	startswith(path, "/transfers")
} else := "/payees" if {
	startswith(path, "/payees")
} else := "/orders" if {
	startswith(path, "/orders")
} else := ""

brokerage := {"brokerage": {"sensitive_prefixes": ["/orders"], "session_idle_seconds": 300, "require_second_factor": true}}

test_live_session_reaches_a_product_it_holds if {
	d := access.decision with input as request("savings", "GET", "/accounts", live)
	d.allow
	d.session_idle_seconds == 900
	d.session_max_seconds == 43200
	d.step_up_window_seconds == 0
	d.step_up == []
}

test_product_the_customer_does_not_hold_is_refused if {
	access.decision.reason == "route_not_permitted" with input as request("card", "GET", "/", live)
}

test_products_are_not_checked_when_configured if {
	access.decision.allow with input as request("card", "GET", "/", live)
		with data.portcullis.config.access.require_product as false
}

test_request_without_a_session_is_refused if {
	access.decision.reason == "no_session" with input as object.remove(request("savings", "GET", "/", live), ["session"])
}

test_request_without_an_account_is_refused if {
	access.decision.reason == "no_session" with input as object.remove(request("savings", "GET", "/", live), ["account"])
}

test_locked_account_is_refused if {
	access.decision.reason == "account_locked" with input as object.union(request("savings", "GET", "/", live), {"account": {"locked": true}})
}

test_idle_session_is_refused if {
	access.decision.reason == "session_idle" with input as request("savings", "GET", "/", object.union(live, {"last_seen": now - 901}))
}

test_session_idle_exactly_fifteen_minutes_is_still_live if {
	access.decision.allow with input as request("savings", "GET", "/", object.union(live, {"last_seen": now - 900}))
}

test_session_older_than_twelve_hours_is_refused if {
	access.decision.reason == "session_expired" with input as request("savings", "GET", "/", object.union(live, {"created": now - 43201}))
}

test_sensitive_path_needs_a_step_up if {
	d := access.decision with input as request("savings", "POST", "/transfers/new", live)
	not d.allow
	d.reason == "step_up_required"
	d.step_up == ["sms", "totp"]
	d.step_up_window_seconds == 600
}

test_sensitive_path_after_a_fresh_step_up_is_allowed if {
	access.decision.allow with input as request("savings", "POST", "/transfers/new", stepped_up)
}

test_sensitive_path_after_an_old_step_up_needs_a_new_one if {
	access.decision.reason == "step_up_stale" with input as request("savings", "GET", "/transfers", object.union(stepped_up, {"step_up_at": now - 601}))
}

test_route_has_its_own_prefixes_and_limits if {
	d := access.decision with input as request("brokerage", "GET", "/orders/1", stepped_up)
		with data.portcullis.config.access.routes as brokerage
	d.allow
	d.session_idle_seconds == 300
	d.step_up_window_seconds == 600
}

test_route_requiring_a_second_factor_refuses_a_password_only_session if {
	d := access.decision with input as request("brokerage", "GET", "/", live)
		with data.portcullis.config.access.routes as brokerage
	d.reason == "step_up_required"
	d.step_up == ["sms", "totp"]
}

test_route_decision_ignores_time if {
	timeless := object.remove(request("savings", "GET", "/transfers", {"methods": ["password"]}), ["now", "client"])
	d := access.route_decision with input as object.union(timeless, {"client": {"facts": {"checked": true}}})
	d.allow
	d.step_up_window_seconds == 600
}

test_sensitive_path_without_any_step_up_method_is_unavailable if {
	access.decision.reason == "step_up_unavailable" with input as object.union(request("savings", "GET", "/payees", live), {"account": {"second_factors": []}})
}

test_request_without_a_route_is_denied_by_default if {
	access.decision.reason == "policy_default_deny" with input as object.remove(request("savings", "GET", "/", live), ["request"])
}

from_client(client) := object.union(request("savings", "GET", "/accounts", live), {"client": client})

vpn_client := {"ip": "203.0.113.40", "facts": {"checked": true, "anonymous": true, "anonymous_vpn": true}, "allow_listed": false}

test_live_session_from_a_vpn_is_refused if {
	d := access.decision with input as from_client(vpn_client)
	not d.allow
	d.reason == "ip_anonymous_vpn"
	d.message == "use_private_network"
}

test_live_session_from_tor_is_refused_by_route_decision if {
	d := access.route_decision with input as from_client({"facts": {"checked": true, "tor_exit_node": true}})
	not d.allow
	d.reason == "ip_tor_exit_node"
}

test_vpn_session_is_allowed_when_access_does_not_block_anonymizers if {
	access.decision.allow with input as from_client(vpn_client)
		with data.portcullis.config.access.block_anonymizers as false
}

test_vpn_session_is_allowed_when_the_flag_is_not_blocked if {
	access.decision.allow with input as from_client(vpn_client)
		with data.portcullis.config.anonymizer.block.anonymous_vpn as false
}

test_vpn_session_from_an_allow_listed_network_is_allowed if {
	access.decision.allow with input as from_client(object.union(vpn_client, {"allow_listed": true}))
}

test_session_from_an_unknown_address_is_refused if {
	d := access.decision with input as from_client({"ip": "", "ip_unknown": true, "facts": {"checked": false}})
	not d.allow
	d.reason == "ip_unknown"
	d.message == "use_private_network"
}

test_session_from_an_unknown_address_is_refused_even_when_unchecked_addresses_are_allowed if {
	d := access.decision with input as from_client({"ip_unknown": true, "facts": {"checked": false}})
		with data.portcullis.config.anonymizer.allow_unchecked_ip as true
	d.reason == "ip_unknown"
}

test_session_from_an_unknown_address_is_allowed_when_access_does_not_block_anonymizers if {
	access.decision.allow with input as from_client({"ip_unknown": true, "facts": {"checked": false}})
		with data.portcullis.config.access.block_anonymizers as false
}

test_locked_account_is_reported_before_the_network if {
	d := access.decision with input as object.union(from_client(vpn_client), {"account": {"locked": true}})
	d.reason == "account_locked"
}

test_a_password_session_as_the_gateway_records_it_is_no_second_factor if {
	not access.second_factor_used with input as request("savings", "GET", "/", {"methods": ["pwd"]})
	access.second_factor_used with input as request("savings", "GET", "/", {"methods": ["pwd", "sms"]})
}
