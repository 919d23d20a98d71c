# Session time limits: an idle limit since the last request and an absolute
# limit since the session was created, both in seconds.
package portcullis.session

import data.portcullis.config

# limits(overrides) are the session limits, with any per-route overrides
# (session_idle_seconds, session_max_seconds) applied.
limits(overrides) := {
	"session_idle_seconds": object.get(overrides, "session_idle_seconds", config.session.idle_seconds),
	"session_max_seconds": object.get(overrides, "session_max_seconds", config.session.max_seconds),
}

# expiry(session, limits) is why the session has ended; undefined while it
# may still be used. The absolute limit is reported before the idle one.
expiry(session, limits) := "session_expired" if {
	input.now - object.get(session, "created", 0) > limits.session_max_seconds
} else := "session_idle" if {
	input.now - object.get(session, "last_seen", 0) > limits.session_idle_seconds
}
