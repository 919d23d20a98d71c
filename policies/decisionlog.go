package policies

import (
	"sync"
	"time"
)

// decisionLine is one line of the decision log.
type decisionLine struct {
	Time       string       `json:"time"`
	Point      Point        `json:"point"`
	Revision   string       `json:"policy_revision"`
	Decision   loggedResult `json:"decision"`
	DurationUS int64        `json:"duration_us"`
	Input      Input        `json:"input"`
}

type loggedResult struct {
	Allow  bool     `json:"allow"`
	Reason string   `json:"reason"`
	StepUp []string `json:"step_up,omitempty"`
	Lock   bool     `json:"lock,omitempty"`
	Notify []string `json:"notify,omitempty"`
}

// decisionBufs holds decision log line buffers between decisions, so the
// line written for every proxied request costs no allocation.
var decisionBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledDecisionBuf bounds the buffers kept in decisionBufs, so one
// unusually long line does not pin its memory.
const maxPooledDecisionBuf = 64 << 10

func (e *Engine) writeDecision(in Input, d Decision, took time.Duration) {
	line := decisionLine{
		Time:       e.now().UTC().Format(time.RFC3339Nano),
		Point:      in.Point,
		Revision:   d.Revision,
		Decision:   loggedResult{Allow: d.Allow, Reason: d.Reason, StepUp: d.StepUp, Lock: d.Lock, Notify: d.Notify},
		DurationUS: took.Microseconds(),
		Input:      redact(in),
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
// secrets by contract; this is a second line of defence: every phone's
// masked form is masked again so at most its last two digits show, and new
// password facts (which say something about a password's length) are
// dropped.
func redact(in Input) Input {
	out := in
	out.Account.SecurityPhone = redactPhone(in.Account.SecurityPhone)
	if in.Code != nil {
		c := *in.Code
		c.Phone.Masked = MaskPhone(c.Phone.Masked)
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
	c.Masked = MaskPhone(c.Masked)
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
