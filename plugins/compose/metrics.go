package compose

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/policies"
)

// policyMetrics exports what the policy decides, as a policies.Observer:
// every decision by point, result and reason with its evaluation time, and
// the login-level views operators alert on (sign-ins by outcome, lockouts,
// passed step-ups by method, refused codes by reason), and the reloads.
// A reason the reasons table does not list is counted as "other", so a
// policy cannot grow the label set without bound.
type policyMetrics struct {
	decisions    *prometheus.CounterVec
	latency      map[policies.Point]prometheus.Observer // bound at start: no label lookup per decision
	logins       *prometheus.CounterVec
	lockouts     prometheus.Counter
	stepUps      *prometheus.CounterVec
	codeRefusals *prometheus.CounterVec
	reloads      *prometheus.CounterVec

	// bound holds the decision counters by their labels, so a proxied
	// request's access decision costs a map read, not a label lookup.
	bound sync.Map // decisionLabels → prometheus.Counter
}

type decisionLabels struct {
	point  policies.Point
	allow  bool
	reason string
}

func newPolicyMetrics(reg prometheus.Registerer) *policyMetrics {
	m := &policyMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_policy_decisions_total",
			Help: "Policy decisions by decision point, result (allow or deny) and reason."}, []string{"point", "result", "reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_logins_total",
			Help: "Sign-in attempts by outcome (signed_in, step_up_required, denied) and reason."}, []string{"outcome", "reason"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_lockouts_total",
			Help: "Profiles locked by the policy (too many incorrect passwords or step-up answers)."}),
		stepUps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_step_ups_total",
			Help: "Security codes, app codes and challenge answers the policy accepted, by method and purpose."}, []string{"method", "purpose"}),
		codeRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_code_sends_refused_total",
			Help: "Security codes the policy refused to send, by reason (VoIP number, send limits, ...)."}, []string{"reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_policy_reloads_total",
			Help: "Attempts to load changed policies, by result; a failed one keeps the previous policies serving."}, []string{"result"}),
		latency: map[policies.Point]prometheus.Observer{},
	}
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "portcullis_policy_evaluation_seconds",
		Help:    "Time to reach a policy decision, by decision point.",
		Buckets: []float64{10e-6, 25e-6, 50e-6, 100e-6, 150e-6, 250e-6, 500e-6, .001, .0025, .01}}, []string{"point"})
	for _, p := range policies.Points() {
		m.latency[p] = latency.WithLabelValues(string(p))
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	reg.MustRegister(m.decisions, latency, m.logins, m.lockouts, m.stepUps, m.codeRefusals, m.reloads)
	return m
}

// reasonLabel is code when the reasons table lists it, else "other".
func reasonLabel(code string) string {
	if _, ok := policies.LookupReason(code); ok {
		return code
	}
	return "other"
}

func (m *policyMetrics) Decided(in policies.Input, d policies.Decision, took time.Duration) {
	if o, ok := m.latency[in.Point]; ok {
		o.Observe(took.Seconds())
	}
	k := decisionLabels{in.Point, d.Allow, d.Reason}
	c, ok := m.bound.Load(k)
	if !ok {
		result := "deny"
		if d.Allow {
			result = "allow"
		}
		point := string(in.Point)
		if _, known := m.latency[in.Point]; !known {
			point = "other"
		}
		c, _ = m.bound.LoadOrStore(k, m.decisions.WithLabelValues(point, result, reasonLabel(d.Reason)))
	}
	c.(prometheus.Counter).Inc()
	if in.Point == policies.PointAccess {
		return
	}
	if d.Lock {
		m.lockouts.Inc()
	}
	switch {
	case in.Point == policies.PointLoginPassword && len(d.StepUp) > 0:
		m.logins.WithLabelValues("step_up_required", reasonLabel(d.Reason)).Inc()
	case in.Point == policies.PointLogin && !d.Allow, in.Point == policies.PointLoginPassword && !d.Allow:
		m.logins.WithLabelValues("denied", reasonLabel(d.Reason)).Inc()
	case in.Point == policies.PointLoginPassword:
		m.logins.WithLabelValues("signed_in", reasonLabel(d.Reason)).Inc()
	case in.Point == policies.PointVerifyCode && d.Allow && in.Code != nil && codeCorrect(&in):
		m.stepUps.WithLabelValues(metricLabel(in.Code.Channel), metricLabel(in.Code.Purpose)).Inc()
	case in.Point == policies.PointSendCode && !d.Allow:
		m.codeRefusals.WithLabelValues(reasonLabel(d.Reason)).Inc()
	}
}

func (m *policyMetrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
	} else {
		m.reloads.WithLabelValues("failed").Inc()
	}
}

// codeCorrect is whether a verify_code input's answer was right (an allowed
// wrong answer is only a try left).
func codeCorrect(in *policies.Input) bool {
	return in.Attempt != nil && in.Attempt.CodeOK != nil && *in.Attempt.CodeOK
}

// metricLabel bounds a channel, step-up method or purpose label to the
// values the gateway uses; anything else is "other".
func metricLabel(v string) string {
	switch v {
	case notify.SMS, notify.Voice, notify.Email, "totp", "questions", "passkey",
		notify.PurposeLogin, notify.PurposeRecover, notify.PurposePhoneChange, notify.PurposeSettings, notify.PurposeNotice, "enrol":
		return v
	}
	return "other"
}

// countingSender counts the messages sent, by channel and purpose, and the
// ones that could not be sent.
type countingSender struct {
	next   notify.Sender
	sent   *prometheus.CounterVec
	failed *prometheus.CounterVec
}

func newCountingSender(next notify.Sender, reg prometheus.Registerer) *countingSender {
	s := &countingSender{next: next,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_messages_sent_total",
			Help: "Messages handed to a delivery provider, by channel (sms, voice, email) and purpose (login, recover, notice, ...)."}, []string{"channel", "purpose"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_message_delivery_failures_total",
			Help: "Messages a delivery provider did not accept, by channel."}, []string{"channel"}),
	}
	reg.MustRegister(s.sent, s.failed)
	return s
}

func (s *countingSender) Send(ctx context.Context, m notify.Message) error {
	if err := s.next.Send(ctx, m); err != nil {
		s.failed.WithLabelValues(metricLabel(m.Channel)).Inc()
		return err
	}
	s.sent.WithLabelValues(metricLabel(m.Channel), metricLabel(m.Purpose)).Inc()
	return nil
}
