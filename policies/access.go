package policies

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The access point is asked on every proxied request, so its answer is
// cached. What may be cached is decided by what the answer depends on:
//
//   - The session's idle and absolute limits and the step-up window depend
//     on the time, which moves between two requests of the same session.
//     Caching a whole decision, even in a time bucket, would let a request
//     through up to a bucket after its session ended. So the cache holds
//     only route_decision, which reads no time, and the time limits are
//     applied in Go on every request from the values route_decision
//     returns (session_idle_seconds, session_max_seconds,
//     step_up_window_seconds). The policy's full decision rule applies the
//     same limits for `opa test` and Explain; a test keeps both in step.
//   - route_decision may read request.route, request.method,
//     request.path_class, whether a session exists, session.methods, the
//     account's facts and the client address's facts (client.facts,
//     client.ip_unknown, client.allow_listed), and load refuses a policy
//     whose route_decision reads anything else. It is evaluated with
//     exactly those fields, and the key holds all of them: route, method,
//     path class, the account, session-method and address facts, and the
//     policy revision. A key therefore names exactly one possible answer,
//     and a step-up, a lock, a new product or a move to a VPN changes the
//     key instead of needing an invalidation.
//   - The client address enters as its facts, never as the address, so
//     every clean address shares entries and the cache stays as effective
//     as before; the facts themselves come from the gateway's signal
//     source, which caches them per address.
//   - Session IDs are secrets and never enter the input, so they are not
//     in the key either; sessions with identical facts share entries, which
//     is correct because the cached answer cannot tell them apart.
//   - The path enters as its class (the sensitive prefix it lies under), so
//     every path below /transfers shares one entry and ordinary pages share
//     another.
type accessKey struct {
	revision  string
	route     string
	method    string
	pathClass string
	facts     string // the account and session methods, see factsKey
	client    string // the address's facts, see clientKey
}

// factsKey encodes the part of the input, besides the request, that
// route_decision may read: every field of the account and the session's
// methods. It is built by hand because it is on every proxied request;
// TestFactsKeyCoversAccount fails when Account gains a field it misses.
func factsKey(a *Account, methods []string) string {
	var b strings.Builder
	b.Grow(64)
	flag := func(v bool) {
		if v {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	// Every list and string is length-prefixed, so no choice of values
	// can make two different inputs encode alike.
	list := func(vs []string) {
		b.WriteString(strconv.Itoa(len(vs)))
		for _, v := range vs {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(len(v)))
			b.WriteByte(':')
			b.WriteString(v)
		}
		b.WriteByte(';')
	}
	flag(a.Exists)
	flag(a.Locked)
	flag(a.EmailOnFile)
	b.WriteString(strconv.Itoa(a.ConsecutiveFailures))
	b.WriteByte(',')
	b.WriteString(strconv.Itoa(a.RecentStepUpFailures))
	b.WriteByte(',')
	b.WriteString(strconv.Itoa(a.ConsecutiveStepUpFailures))
	b.WriteByte(';')
	list(a.SecondFactors)
	list(a.Products)
	if p := a.SecurityPhone; p != nil {
		flag(p.Valid)
		b.WriteString(strconv.Itoa(p.CallingCode))
		b.WriteByte(';')
		list([]string{p.Region, p.LineType, p.Source, p.Masked})
	} else {
		b.WriteByte('-')
	}
	list(methods)
	return b.String()
}

// clientKey encodes the part of Client that route_decision may read: the
// address's facts, whether it is unknown and whether it is allow-listed,
// never the address. TestClientKeyCoversFacts fails when IPFacts or Client
// gains a field it misses.
func clientKey(c *Client) string {
	b := make([]byte, 0, 16+len(c.Facts.Country))
	for _, v := range [...]bool{
		c.IPUnknown, c.AllowListed,
		c.Facts.Checked, c.Facts.AnonymousVPN, c.Facts.PublicProxy, c.Facts.TorExitNode,
		c.Facts.HostingProvider, c.Facts.ResidentialProxy, c.Facts.Anonymous,
	} {
		if v {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	return string(append(b, c.Facts.Country...))
}

func (e *Engine) decideAccess(ctx context.Context, set *policySet, in *Input) (Decision, error) {
	var err error
	key := accessKey{
		revision:  set.revision,
		route:     in.Request.Route,
		method:    in.Request.Method,
		pathClass: in.Request.PathClass,
		facts:     factsKey(&in.Account, in.Session.Methods),
		client:    clientKey(&in.Client),
	}
	rd, ok := e.cache.Get(key)
	if !ok {
		narrow := Input{
			Point:   PointAccess,
			Client:  Client{IPUnknown: in.Client.IPUnknown, AllowListed: in.Client.AllowListed, Facts: in.Client.Facts},
			Account: in.Account,
			Request: Request{Route: in.Request.Route, Method: in.Request.Method, PathClass: in.Request.PathClass},
			Session: &Session{Methods: in.Session.Methods},
		}
		rd, err = set.eval(ctx, *set.route, narrow.value(), nil)
		if err != nil {
			return Decision{}, fmt.Errorf("route_decision: %w", err)
		}
		e.cache.Add(key, rd)
	}
	return set.applyTime(rd, in)
}

// applyTime turns a route_decision into the access decision for in.Now,
// in the order the access policy's decision rule uses: session expiry,
// then the route's own refusal, then the step-up window.
func (s *policySet) applyTime(rd Decision, in *Input) (Decision, error) {
	d := rd
	d.StepUp = slices.Clone(rd.StepUp)
	d.Notify = slices.Clone(rd.Notify)
	deny := func(reason string) (Decision, error) {
		d.Allow, d.Reason, d.Message = false, reason, s.message(reason)
		return d, nil
	}
	if rd.Allow && (rd.SessionIdleSeconds <= 0 || rd.SessionMaxSeconds <= 0) {
		return Decision{}, fmt.Errorf("route_decision allows without session limits")
	}
	sess := in.Session
	switch {
	case rd.SessionMaxSeconds > 0 && in.Now-sess.Created > rd.SessionMaxSeconds:
		return deny("session_expired")
	case rd.SessionIdleSeconds > 0 && in.Now-sess.LastSeen > rd.SessionIdleSeconds:
		return deny("session_idle")
	case !rd.Allow || rd.StepUpWindowSeconds <= 0:
		return d, nil
	case len(rd.StepUp) == 0:
		return deny("step_up_unavailable")
	case sess.StepUpAt == 0:
		return deny("step_up_required")
	case in.Now-sess.StepUpAt > rd.StepUpWindowSeconds:
		return deny("step_up_stale")
	}
	return d, nil
}
