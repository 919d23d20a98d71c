package assertion

// The headers the gateway sets on every proxied request. Everything starting
// with HeaderPrefix belongs to the gateway: it deletes all of them from the
// client's request before setting its own, so an upstream app never sees a
// client-supplied value. Only the assertion is proof; an app that can verify
// it should take the identity from the verified claims.
const (
	// HeaderPrefix is the gateway's header namespace.
	HeaderPrefix = "X-Portcullis-"
	// HeaderUser carries the username (the preferred_username claim).
	HeaderUser = "X-Portcullis-User"
	// HeaderUserID carries the user ID (the sub claim).
	HeaderUserID = "X-Portcullis-User-Id"
	// HeaderAuthMethods carries the comma-separated authentication methods
	// (the amr claim), such as "pwd,otp".
	HeaderAuthMethods = "X-Portcullis-Auth-Methods"
	// HeaderAssertion carries the signed JWT.
	HeaderAssertion = "X-Portcullis-Assertion"
)
