package portcullis.session_test

import data.portcullis.session

default_limits := {"session_idle_seconds": 900, "session_max_seconds": 43200}

test_default_limits_are_fifteen_minutes_idle_and_twelve_hours if {
	session.limits({}) == default_limits
}

test_route_overrides_the_limits if {
	session.limits({"session_idle_seconds": 300}) == {"session_idle_seconds": 300, "session_max_seconds": 43200}
}

test_recent_session_is_live if {
	not session.expiry({"created": 1000, "last_seen": 1500}, default_limits) with input as {"now": 2400}
}

test_session_idle_for_more_than_fifteen_minutes_ends if {
	session.expiry({"created": 1000, "last_seen": 1500}, default_limits) == "session_idle" with input as {"now": 2401}
}

test_session_older_than_twelve_hours_ends if {
	session.expiry({"created": 1000, "last_seen": 44000}, default_limits) == "session_expired" with input as {"now": 44201}
}

test_session_without_times_has_ended if {
	session.expiry({}, default_limits) == "session_expired" with input as {"now": 1000000}
}
