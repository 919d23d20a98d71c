package policies

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/version"
)

// DecisionLogFormat is the version of the decision log's line shape,
// written in every line as portcullis.format. docs/decision-log.md
// describes it; a change that a reader of the previous version would
// misread gets a new number.
const DecisionLogFormat = 1

// decisionLine is one line of the decision log, in the shape of OPA's
// decision log events so that tools reading OPA's logs read ours; what is
// Portcullis's own sits under "portcullis".
type decisionLine struct {
	DecisionID string        `json:"decision_id"`
	Labels     loggedLabels  `json:"labels"`
	Bundles    loggedBundles `json:"bundles"`
	Path       string        `json:"path"`
	Input      Input         `json:"input"`
	Result     loggedResult  `json:"result"`
	Timestamp  string        `json:"timestamp"`
	Metrics    loggedMetrics `json:"metrics"`
	Portcullis loggedFormat  `json:"portcullis"`
}

// loggedLabels identify the engine that decided, as OPA's labels identify
// its instance: a random ID per Engine and the OPA version evaluating.
type loggedLabels struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

type loggedBundles struct {
	Portcullis loggedBundle `json:"portcullis"`
}

type loggedBundle struct {
	Revision string `json:"revision"`
}

type loggedMetrics struct {
	EvalNS int64 `json:"timer_rego_query_eval_ns"`
}

type loggedFormat struct {
	Format int   `json:"format"`
	Point  Point `json:"point"`
	// UserID is the profile the decision is about, when the gateway knew
	// one (Account.UserID).
	UserID string `json:"user_id,omitempty"`
	// Shadow marks a line written by shadow evaluation: the decision is the
	// candidate policy's, never enforced, and replay skips the line.
	Shadow *loggedShadow `json:"shadow,omitempty"`
}

// loggedShadow is what a shadow line records of the live decision it
// differs from.
type loggedShadow struct {
	LiveDecisionID string       `json:"live_decision_id"`
	LiveResult     loggedResult `json:"live_result"`
}

type loggedResult struct {
	Allow  bool     `json:"allow"`
	Reason string   `json:"reason"`
	StepUp []string `json:"step_up,omitempty"`
	Lock   bool     `json:"lock,omitempty"`
	Notify []string `json:"notify,omitempty"`
}

// decisionPath is the rule path of point's decision, as OPA's logs name
// the query: portcullis/login/decision.
func decisionPath(p Point) string { return "portcullis/" + string(p) + "/decision" }

// newDecisionID returns a random 128-bit ID formatted as a version 4 UUID,
// the form OPA gives its decision IDs.
func newDecisionID() string {
	var u [16]byte
	rand.Read(u[:]) // never fails: crypto/rand aborts the program instead
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// opaVersion is the OPA version labelled on every decision log line.
var opaVersion = version.Version

// decisionBufs holds decision log line buffers between decisions, so the
// line written for every proxied request costs no allocation.
var decisionBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledDecisionBuf bounds the buffers kept in decisionBufs, so one
// unusually long line does not pin its memory.
const maxPooledDecisionBuf = 64 << 10

func (e *Engine) writeDecision(in Input, d Decision, took time.Duration) {
	e.writeLine(in, d, took, nil)
}

// writeShadowDecision logs the shadow policy's decision d where it differs
// from the live one, marked as a shadow line.
func (e *Engine) writeShadowDecision(in Input, live, d Decision, took time.Duration) {
	d.DecisionID = newDecisionID()
	e.writeLine(in, d, took, &loggedShadow{LiveDecisionID: live.DecisionID, LiveResult: resultOf(live)})
}

func (e *Engine) writeLine(in Input, d Decision, took time.Duration, shadow *loggedShadow) {
	line := decisionLine{
		DecisionID: d.DecisionID,
		Labels:     loggedLabels{ID: e.instanceID, Version: opaVersion},
		Bundles:    loggedBundles{Portcullis: loggedBundle{Revision: d.Revision}},
		Path:       decisionPath(in.Point),
		Input:      redact(in),
		Result:     loggedResult{Allow: d.Allow, Reason: d.Reason, StepUp: d.StepUp, Lock: d.Lock, Notify: d.Notify},
		Timestamp:  e.now().UTC().Format(time.RFC3339Nano),
		Metrics:    loggedMetrics{EvalNS: took.Nanoseconds()},
		Portcullis: loggedFormat{Format: DecisionLogFormat, Point: in.Point, UserID: in.Account.UserID, Shadow: shadow},
	}
	bp := decisionBufs.Get().(*[]byte)
	b := line.appendJSON((*bp)[:0])
	b = append(b, '\n')
	e.logMu.Lock()
	_, err := e.log.Write(b) // an io.Writer must not retain b
	e.logMu.Unlock()
	if err != nil {
		e.logger.Error("decision log write failed", "error", err)
	}
	if cap(b) <= maxPooledDecisionBuf {
		*bp = b
		decisionBufs.Put(bp)
	}
}

// redact returns a copy of in fit for the decision log. The input holds no
// secrets by contract; this is a second line of defence: a phone is
// logged as its facts only (valid, line type, region, calling code, where
// the type came from), without even its masked digits, and new password
// facts (which say something about a password's length) are dropped.
func redact(in Input) Input {
	out := in
	out.Account.SecurityPhone = redactPhone(in.Account.SecurityPhone)
	if in.Code != nil {
		c := *in.Code
		c.Phone.Masked = ""
		out.Code = &c
	}
	if in.Change != nil {
		c := *in.Change
		c.Phone = redactPhone(c.Phone)
		c.NewPassword = nil
		out.Change = &c
	}
	if in.Enrolment != nil {
		en := *in.Enrolment
		en.Phone = redactPhone(en.Phone)
		en.NewPassword = nil
		out.Enrolment = &en
	}
	if in.Recovery != nil {
		r := *in.Recovery
		r.NewPassword = nil
		out.Recovery = &r
	}
	return out
}

func redactPhone(p *PhoneFacts) *PhoneFacts {
	if p == nil {
		return nil
	}
	c := *p
	c.Masked = ""
	return &c
}

// MaskPhone hides every digit of s but the last two, keeping other
// characters, so "+44 7700 900123" becomes "+** **** ****23". It is
// idempotent.
func MaskPhone(s string) string {
	digits := 0
	for i := range len(s) {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
		}
	}
	b := []byte(s)
	for i := range b {
		if b[i] >= '0' && b[i] <= '9' {
			if digits > 2 {
				b[i] = '*'
			}
			digits--
		}
	}
	return string(b)
}
