# Decision point "access": asked for every request proxied to an upstream
# app. May this session reach this route and path now?
#
# The gateway classifies the path before asking: input.request.path_class is
# the longest sensitive prefix configured for the route
# (config.access.routes[route].sensitive_prefixes, else
# config.access.default_route) that the path lies under, matched by whole
# segments and ignoring case, or "" when none applies. Like network
# allow-listing, prefix matching is done in Go; the policy reads the class.
#
# The decision is split in two so the engine can cache most of it:
#
#   route_decision  whether the session may reach the route at all, with the
#                   limits that apply: session_idle_seconds,
#                   session_max_seconds, and step_up_window_seconds (> 0 on a
#                   sensitive path) with the step-up methods to offer. It may
#                   read only input.request.route, input.request.method,
#                   input.request.path_class, input.session (present or
#                   not), input.session.methods, input.account and the
#                   address's facts (input.client.facts, .ip_unknown,
#                   .allow_listed; never input.client.ip). The
#                   engine refuses to load a policy whose route_decision
#                   reads anything else, evaluates it with those fields only
#                   and caches the result by their values.
#   decision        route_decision with the time limits applied. The engine
#                   applies the same limits in Go to a cached route_decision,
#                   so both answer alike.
#
# IP signals are checked on every request, not only at login: a session
# opened from a clean address is refused once it moves to Tor, a VPN or an
# address the gateway cannot read, with the login's reasons (ip.denials:
# config.anonymizer.block, allow_unchecked_ip and allow_listed_networks
# apply alike). config.access.block_anonymizers false turns this off and
# leaves network checks to login alone.
package portcullis.access

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.session
import data.portcullis.stepup

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

default route_decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

route := object.get(config.access.routes, input.request.route, config.access.default_route)

sensitive if input.request.path_class != ""

# password_methods name the password in session.methods: the gateway records
# RFC 8176's "pwd"; "password" is accepted as its long form.
password_methods := {"pwd", "password"}

second_factor_used if {
	some method in input.session.methods
	not method in password_methods
}

methods := stepup.methods(config.access.step_up_methods)

offer := methods if {
	sensitive
} else := methods if {
	route.require_second_factor == true
} else := []

limits := session.limits(route)

window := object.get(route, "step_up_window_seconds", config.access.step_up_window_seconds) if {
	sensitive
} else := 0

fields := object.union(limits, {"step_up_window_seconds": window, "step_up": offer})

# route_refusal is why the session may not reach this route at all.
route_refusal := "no_session" if {
	not input.session
} else := "no_session" if {
	not input.account.exists
} else := "account_locked" if {
	input.account.locked
} else := reason if {
	config.access.block_anonymizers
	reason := ip.denial
} else := "route_not_permitted" if {
	config.access.require_product
	not input.request.route in object.get(input.account, "products", [])
} else := "step_up_required" if {
	route.require_second_factor == true
	not second_factor_used
}

route_decision := object.union(outcome.deny(route_refusal), fields)

route_decision := object.union(outcome.allowed, fields) if not route_refusal

decision := object.union(route_decision, outcome.deny(reason)) if {
	reason := session.expiry(input.session, limits)
} else := route_decision if {
	not route_decision.allow
} else := object.union(route_decision, outcome.deny(reason)) if {
	route_decision.step_up_window_seconds > 0
	reason := stepup.problem(input.session, route_decision.step_up_window_seconds, route_decision.step_up)
} else := route_decision
