# What the client's network says about a request: whether the address is
# known at all, anonymizer flags from the GeoIP data, whether it could be
# checked, and how many failures came from the address recently. Facts are
# computed by the gateway; this package only judges them.
#
# input.client.ip_unknown means the gateway could not tell who the client is
# (a trusted proxy's X-Forwarded-For did not parse). That is refused as
# ip_unknown whatever config.anonymizer.allow_unchecked_ip says: that knob
# waives a missing GeoIP database for an address that is known, still
# throttled on its own and still matched against allow_listed_networks. An
# unknown address has none of that: there is nothing to look up, allow-list
# or throttle, and a broken forwarding chain is a misconfiguration or
# tampering, not an outage to ride out.
package portcullis.ip

import data.portcullis.config

# priority ranks the network refusals from the most to the least specific;
# when several apply, the first is the one reported.
priority := {
	"ip_unknown": -1,
	"ip_tor_exit_node": 0,
	"ip_public_proxy": 1,
	"ip_anonymous_vpn": 2,
	"ip_residential_proxy": 3,
	"ip_hosting_provider": 4,
	"ip_unchecked": 5,
}

# flagged is a reason for each anonymizer flag set on the client address
# that config.anonymizer.block blocks. (A comprehension costs half of an
# incremental set rule here, and this runs on every login.)
flagged := {concat("", ["ip_", flag]) |
	some flag, value in input.client.facts
	value == true
	config.anonymizer.block[flag] == true
}

# denials is every network reason to refuse this client. An allow-listed
# network (matched in Go against config.allow_listed_networks) is exempt.
denials := {"ip_unknown"} if {
	input.client.ip_unknown == true
} else := flagged if {
	not input.client.allow_listed
	input.client.facts.checked
} else := {"ip_unchecked"} if {
	not input.client.allow_listed
	not config.anonymizer.allow_unchecked_ip
} else := set()

# denial is the reason reported when the network is refused.
denial := min({[object.get(priority, reason, 99), reason] | some reason in denials})[1] if count(denials) > 0

# throttled is true when this address has failed too often recently; checked
# before any password so one source cannot lock out many accounts.
throttled if input.client.recent_failures >= config.throttle.max_ip_failures

# failure_count is what a point adds to its decision when a failure should
# count against the client address.
failure_count := {
	"count_ip_failure": true,
	"ip_failure_window_seconds": config.throttle.ip_failure_window_seconds,
}
