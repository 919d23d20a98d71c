package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// forwardAuthPath is where another proxy in front of the apps (nginx
// auth_request, Traefik forwardAuth, Caddy forward_auth) asks whether a
// request may pass. See docs/forward-auth.md.
const forwardAuthPath = reservedPrefix + "auth"

// maxForwardedURI bounds the original request target a proxy may name.
const maxForwardedURI = 8192

// The query parameter that picks the answer to a request without a session:
// 302 to the sign-in page (the default: Traefik and Caddy pass it to the
// browser), or 401 with the sign-in URL in Location (nginx auth_request,
// which accepts only 2xx, 401 and 403 and turns the 401 into the redirect).
const (
	unauthenticatedParam = "unauthenticated"
	answer401            = "401"
	answer302            = "302"
)

// forwardedRequest is the original request a forward-auth call describes.
type forwardedRequest struct {
	method string
	// host is the request's Host, with its port when it named one.
	host string
	uri  *url.URL
}

// serveForwardAuth answers a forward-auth call: the access decision the
// gateway makes for every proxied request, about the original request the
// calling proxy describes in forwarded headers, without proxying it.
//
// Allowed: 200, an empty body, and the identity hand-off (the identity
// headers and the signed assertion) as response headers for the proxy to
// copy onto the request it passes on. No session: a redirect to sign in
// (see unauthenticatedParam). Refused by the policy: 403. A store or policy
// failure: 503. Identity headers on the call itself are never read, and it
// changes nothing a proxied request would not (a session's last use).
func (s *Server) serveForwardAuth(w http.ResponseWriter, r *http.Request) error {
	peer := web.ClientIP(r, nil)
	if !peer.IsValid() || !slices.ContainsFunc(s.cfg.ForwardAuth.TrustedNetworks, func(p netip.Prefix) bool { return p.Contains(peer) }) {
		return web.Forbidden(policies.ReasonForwardAuthRefused,
			fmt.Errorf("forward auth: peer %s is not in forward_auth.trusted_networks", peer))
	}
	mode := r.URL.Query().Get(unauthenticatedParam)
	if mode != "" && mode != answer401 && mode != answer302 {
		return web.BadRequest(fmt.Errorf("forward auth: %s must be %s or %s", unauthenticatedParam, answer401, answer302))
	}
	fwd, err := readForwarded(r)
	if err != nil {
		return web.BadRequest(fmt.Errorf("forward auth: %w", err))
	}
	host := web.HostName(fwd.host)
	rt := s.route(host, fwd.uri.Path)
	if rt == nil || strings.HasPrefix(fwd.uri.Path, reservedPrefix) {
		return web.Forbidden(policies.ReasonForwardAuthRefused,
			fmt.Errorf("forward auth: %s on %q is not a route", fwd.uri.Path, host))
	}
	// The original request as the browser made it: its host's session
	// cookie, and the sign-in URL built from its host and target.
	orig := r.Clone(r.Context())
	orig.Method, orig.Host, orig.URL, orig.RequestURI = fwd.method, fwd.host, fwd.uri, fwd.uri.RequestURI()
	id, ok, err := s.sessions.Current(orig)
	if err != nil {
		return web.Unavailable(err)
	}
	if !ok {
		return s.forwardSignIn(w, r, orig, mode)
	}
	// Judged like the proxied request the call stands for: the client
	// address the proxy names, the risk signals of that address.
	client := web.ClientIP(r, s.forwardTrust)
	d, ended, err := s.decideAccess(r.Context(), rt, id, client, fwd.uri.Path, fwd.method)
	switch {
	case err != nil:
		return err
	case ended:
		return s.forwardSignIn(w, r, orig, mode)
	case !d.Allow:
		e := s.site.Denial(d)
		// nginx passes on only 401 and 403: a refusal must not look like
		// "sign in" (401), and a failure stays a failure.
		if e.Status < http.StatusInternalServerError {
			e.Status = http.StatusForbidden
		}
		return e
	}
	token, err := s.assertionFor(id, rt)
	if err != nil {
		return web.Unavailable(err)
	}
	s.setIdentityHeaders(w.Header(), id, token)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// forwardSignIn answers a forward-auth call without a valid session: the
// sign-in URL, with the original request as the return target when the
// redirect validation accepts it (else the host's root). mode 401 answers
// 401 with the URL in Location and the body, for nginx; otherwise a GET or
// HEAD is redirected (302) and anything else is refused with 401, as the
// proxy does for the same request.
func (s *Server) forwardSignIn(w http.ResponseWriter, r, orig *http.Request, mode string) error {
	if !s.safeReturn(orig) {
		orig.URL, orig.RequestURI = &url.URL{Path: "/"}, "/"
	}
	signIn := s.site.SignInURL(orig)
	w.Header().Set("Cache-Control", "no-store")
	if mode == answer401 {
		w.Header().Set("Location", signIn)
		web.WriteJSON(w, http.StatusUnauthorized, web.APIResponse{Status: "denied", Reason: policies.ReasonUnauthenticated,
			Message: web.MsgSessionEnded, Redirect: signIn})
		return nil
	}
	if orig.Method != http.MethodGet && orig.Method != http.MethodHead {
		return &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonUnauthenticated, Message: web.MsgSessionEnded}
	}
	http.Redirect(w, r, signIn, http.StatusFound)
	return nil
}

// safeReturn reports whether the original request may be the return target
// after sign-in, by the checks every return target passes: an absolute URL
// on a served host and port for the login host's sign-in, a path on this
// host otherwise.
func (s *Server) safeReturn(orig *http.Request) bool {
	if s.cfg.LoginHost == "" || s.cfg.LoginHost == web.HostName(orig.Host) {
		_, ok := web.SafeReturnPath(orig.URL.RequestURI())
		return ok
	}
	_, _, ok := s.site.ReturnURL(orig, "https://"+orig.Host+orig.URL.RequestURI())
	return ok
}

// readForwarded reads the original request from the forwarded headers of
// the three conventions: X-Forwarded-Method, -Uri, -Host and -Proto
// (Traefik, Caddy) and X-Original-Method, X-Original-URI (nginx), whose
// host comes from X-Forwarded-Host or the call's Host. A header given more
// than once, or both spellings with different values, is refused: a client
// may have added one that its proxy passed on beside its own.
func readForwarded(r *http.Request) (forwardedRequest, error) {
	var fwd forwardedRequest
	h := r.Header
	method, err := oneOf(h, "X-Forwarded-Method", "X-Original-Method")
	if err != nil {
		return fwd, err
	}
	if !validMethod(method) {
		return fwd, fmt.Errorf("the original method %.32q is not a method (X-Forwarded-Method or X-Original-Method is required)", method)
	}
	uri, err := oneOf(h, "X-Forwarded-Uri", "X-Original-URI")
	if err != nil {
		return fwd, err
	}
	if fwd.uri, err = parseForwardedURI(uri); err != nil {
		return fwd, err
	}
	switch proto, err := single(h, "X-Forwarded-Proto"); {
	case err != nil:
		return fwd, err
	case proto != "" && proto != "https":
		return fwd, fmt.Errorf("X-Forwarded-Proto %q: only https requests carry a session", proto)
	}
	host, err := single(h, "X-Forwarded-Host")
	if err != nil {
		return fwd, err
	}
	if host == "" {
		host = r.Host
	}
	if !validAuthority(host) {
		return fwd, fmt.Errorf("the original host %.64q is not a host name with an optional port", host)
	}
	if len(h.Values("X-Forwarded-For")) == 0 {
		return fwd, errors.New("X-Forwarded-For naming the client is required")
	}
	fwd.method, fwd.host = method, host
	return fwd, nil
}

// oneOf returns the value of header a or b, which must agree when both are
// given.
func oneOf(h http.Header, a, b string) (string, error) {
	va, err := single(h, a)
	if err != nil {
		return "", err
	}
	vb, err := single(h, b)
	if err != nil {
		return "", err
	}
	if va != "" && vb != "" && va != vb {
		return "", fmt.Errorf("%s and %s disagree", a, b)
	}
	if va != "" {
		return va, nil
	}
	return vb, nil
}

// single returns a header given at most once, "" when absent.
func single(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", fmt.Errorf("%s is given more than once", name)
	}
	return strings.TrimSpace(vs[0]), nil
}

// parseForwardedURI parses the original request target: an absolute path
// with an optional query, without control characters or spaces.
func parseForwardedURI(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("X-Forwarded-Uri or X-Original-URI naming the original request is required")
	}
	if len(s) > maxForwardedURI || s[0] != '/' {
		return nil, fmt.Errorf("the original request target (%d bytes) is not a path of at most %d bytes", len(s), maxForwardedURI)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] == 0x7f {
			return nil, errors.New("the original request target holds a control character or space")
		}
	}
	u, err := url.ParseRequestURI(s)
	if err != nil {
		// Not wrapped: url.Error repeats the target, query and all.
		return nil, errors.New("the original request target is not a request URI")
	}
	return u, nil
}

// validAuthority reports whether s is a host name, optionally with a port
// from 1 to 65535.
func validAuthority(s string) bool {
	host, port, found := strings.Cut(s, ":")
	if found {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return false
		}
	}
	return host != "" && len(host) <= 253 && !strings.ContainsFunc(host, func(c rune) bool {
		return !(c == '-' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z')
	})
}

// validMethod reports whether m is an HTTP method token in upper case.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
