// Package policies is the Go side of Portcullis's login policies. It loads
// and compiles the Rego in rego/ (embedded in the binary, or a directory the
// security team edits), evaluates one prepared query per decision point for
// each request, reloads on change without a restart, and writes a decision
// log. Every failure on the way to a decision is a deny.
//
// The gateway builds an Input of facts (network signals, account state,
// counters, device), calls Engine.Decide for a point, and acts on the
// Decision. docs/policies.md is the contract for policy authors.
package policies

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	shipped "github.com/portcullis/portcullis/rego"
)

// Config configures an Engine.
type Config struct {
	// Dir is a directory of policies and data laid out like rego/; empty
	// means the policies embedded in the binary.
	Dir string
	// Bundle, when set, loads the policies from an OPA bundle file instead
	// of Dir; Watch reloads it when the file changes.
	Bundle *Bundle
	// Logger receives load, reload and evaluation errors; nil discards.
	Logger *slog.Logger
	// DecisionLog, when set, receives one JSON line per decision in the
	// shape of OPA's decision log events (docs/decision-log.md): decision
	// ID, rule path, policy revision, time, the decision and the input,
	// with phone numbers masked and password facts removed. Writes are
	// serialised, one Write per line.
	DecisionLog io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AccessCacheSize bounds the access decision cache; 0 means 10,000
	// entries and a negative value disables the cache.
	AccessCacheSize int
	// Observer, when set, is told of every decision and reload.
	Observer Observer
}

// Engine evaluates the policies. It is safe for concurrent use; Reload and
// Watch swap the policies atomically under running Decide calls.
type Engine struct {
	fsys   fs.FS         // nil for the embedded policies or a bundle
	bundle *bundleReader // nil unless the policies come from a bundle
	origin string
	logger *slog.Logger
	now    func() time.Time

	current atomic.Pointer[policySet]
	cache   *lru.Cache[accessKey, Decision]

	reloadMu   sync.Mutex
	lastFailed string // revision that last failed to load; guarded by reloadMu

	shadowMu     sync.Mutex // serialises SetShadow and ReloadShadow
	shadow       atomic.Pointer[shadow]
	shadowFailed string // shadow revision that last failed to load; guarded by shadowMu
	shadowCounts shadowCounts

	logMu      sync.Mutex
	log        io.Writer
	instanceID string // labels.id of the decision log lines
	observer   Observer
}

// New loads and compiles the policies and prepares one query per decision
// point. It fails when the policies do not compile, when a point has no
// decision rule, or when the data's settings are malformed.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	e := &Engine{
		logger:   cfg.Logger,
		now:      cfg.Now,
		log:      cfg.DecisionLog,
		observer: cfg.Observer,
		origin:   "embedded",
	}
	if e.log != nil {
		e.instanceID = newDecisionID()
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	switch {
	case cfg.Bundle != nil && cfg.Dir != "":
		return nil, errors.New("policies: a directory and a bundle are both configured; choose one")
	case cfg.Bundle != nil:
		if _, err := cfg.Bundle.verification(); err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		e.bundle = &bundleReader{Bundle: *cfg.Bundle}
		e.origin = cfg.Bundle.Path
	case cfg.Dir != "":
		info, err := os.Stat(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("policies: %s is not a directory", cfg.Dir)
		}
		e.fsys = os.DirFS(cfg.Dir)
		e.origin = cfg.Dir
	}
	size := cfg.AccessCacheSize
	if size == 0 {
		size = 10_000
	}
	if size > 0 {
		cache, err := lru.New[accessKey, Decision](size)
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		e.cache = cache
	}
	src, err := e.read(false)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	set, err := load(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("policies: load %s: %w", e.origin, err)
	}
	e.current.Store(set)
	e.logger.Info("policies loaded", "source", e.origin, "policy_rev", set.revision)
	return e, nil
}

func (e *Engine) read(tests bool) (*sources, error) {
	if e.bundle != nil {
		return e.bundle.read()
	}
	if e.fsys == nil {
		return readSources(shipped.FS, tests)
	}
	return readSources(e.fsys, tests)
}

// Revision identifies the policy sources and data serving now: the first
// 16 hex digits of a SHA-256 over every non-test file.
func (e *Engine) Revision() string { return e.current.Load().revision }

// AllowListed reports whether addr lies in the serving policy data's
// allow_listed_networks. Decide sets Input.Client.AllowListed itself from
// Client.IP, so callers need this only to show or log it.
func (e *Engine) AllowListed(addr netip.Addr) bool {
	return e.current.Load().containsAddr(addr)
}

// PathClass is the longest sensitive prefix of the serving policy data for
// route (config.access.routes[route].sensitive_prefixes, else
// config.access.default_route) that urlPath lies under, matching whole
// segments after removing path parameters, cleaning and lower-casing; ""
// when none applies. Decide sets Input.Request.PathClass with it.
func (e *Engine) PathClass(route, urlPath string) string {
	return e.current.Load().pathClass(route, urlPath)
}

// IPFailureWindow is the window of the per-address failure throttle
// (data config.throttle.ip_failure_window_seconds) in the serving policy, so
// the gateway reads the count the policy will judge.
func (e *Engine) IPFailureWindow() time.Duration { return e.current.Load().ipWindow }

// StepUpFailureWindow is the window in which wrong step-up answers are
// counted per account (data.portcullis.config.step_up.failures).
func (e *Engine) StepUpFailureWindow() time.Duration { return e.current.Load().stepUpWindow }

// SendLimitWindows are the fixed windows in which the gateway counts
// security-code sends for the send_code limits
// (data.portcullis.config.codes.send_limits.*.window_seconds), one per
// counter of SendCounts.
type SendLimitWindows struct {
	User        time.Duration // per_user
	Number      time.Duration // per_number
	Address     time.Duration // per_address
	CallingCode time.Duration // per_calling_code
}

// SendLimitWindows are the send-limit windows of the serving policy, so the
// gateway counts sends in the windows whose counts the policy judges. Each
// is positive: load refuses data where one is not.
func (e *Engine) SendLimitWindows() SendLimitWindows { return e.current.Load().sendWindows }

// MaxConsecutiveFailures is the number of wrong passwords in a row that
// locks a profile (data.portcullis.config.lockout.max_consecutive_failures).
// The gateway holds a successful login to it in the same atomic step that
// resets the count, so a login racing the failure that locks is refused.
func (e *Engine) MaxConsecutiveFailures() int { return e.current.Load().maxFailures }

// MaxConsecutiveStepUpFailures is how many step-up answers in a row that do
// not pass lock a profile
// (data.portcullis.config.step_up.max_consecutive_failures). The gateway
// holds a passed step-up to it in the same atomic step that resets the
// count, so a right answer racing the wrong ones that reach it is refused.
func (e *Engine) MaxConsecutiveStepUpFailures() int { return e.current.Load().maxStepUps }

// PasswordRules are the length rules for a new password in the serving
// policy (data.portcullis.config.passwords), so the gateway and the admin
// command refuse in Go what the policy would refuse.
func (e *Engine) PasswordRules() PasswordRules { return e.current.Load().passwords }

// Reload reads and compiles the policies again and, if they compile, swaps
// them in. When they do not, the previous policies keep serving, the error
// is logged and returned. Reloading unchanged sources does nothing.
func (e *Engine) Reload(ctx context.Context) error {
	src, err := e.read(false)
	if err != nil {
		e.logger.Error("policy reload failed", "source", e.origin, "error", err)
		e.reloaded(false)
		return fmt.Errorf("policies: reload: %w", err)
	}
	return e.reload(ctx, src)
}

func (e *Engine) reload(ctx context.Context, src *sources) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	old := e.current.Load()
	if src.revision == old.revision {
		return nil
	}
	set, err := load(ctx, src)
	if err != nil {
		e.lastFailed = src.revision
		e.logger.Error("policy reload failed", "source", e.origin, "policy_rev", src.revision,
			"serving_rev", old.revision, "error", err)
		e.reloaded(false)
		return fmt.Errorf("policies: reload %s: %w", e.origin, err)
	}
	e.lastFailed = ""
	e.current.Store(set)
	if e.cache != nil {
		// Keys carry the revision, so stale entries could never be hit;
		// purging just returns their memory.
		e.cache.Purge()
	}
	e.logger.Info("policies reloaded", "source", e.origin, "policy_rev", set.revision, "previous_rev", old.revision)
	e.reloaded(true)
	return nil
}

// maxWatchBackoff caps how long Watch waits between tries while the policy
// directory cannot be read.
const maxWatchBackoff = time.Minute

// Watch reloads the policies whenever the files in Config.Dir change,
// checking every interval (a second when interval is 0) until ctx ends. It
// hashes the files' contents rather than trusting modification times, so
// an edit within the same second is still seen, and retries a broken
// revision only once it changes again. While the directory cannot be read
// (removed, unmounted, permissions) it backs off: the wait doubles after
// each failed read up to a minute (or interval, if longer), and each
// failure is logged once, so a missing directory does not log every
// second; the first good read logs the recovery and restores interval.
// A bundle is watched the same way: a changed file that fails
// verification is refused like a broken edit. With the embedded policies
// it returns at once.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	if e.fsys == nil && e.bundle == nil {
		return
	}
	if interval <= 0 {
		interval = time.Second
	}
	ceiling := max(interval, maxWatchBackoff)
	wait, failures := interval, 0
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		src, err := e.read(false)
		if err != nil {
			failures++
			wait = min(wait*2, ceiling)
			e.logger.Error("policy watch failed", "source", e.origin, "failures", failures,
				"retry_in", wait.String(), "error", err)
			e.reloaded(false)
			t.Reset(wait)
			continue
		}
		if failures > 0 {
			e.logger.Info("policy watch recovered", "source", e.origin, "failures", failures)
			wait, failures = interval, 0
		}
		e.reloadMu.Lock()
		skip := src.revision == e.current.Load().revision || src.revision == e.lastFailed
		e.reloadMu.Unlock()
		if !skip {
			_ = e.reload(ctx, src) // logged by reload
		}
		t.Reset(wait)
	}
}

// Decide asks the policy for in.Point. It never returns Allow on a
// failure: an unknown point, an evaluation error, an undefined or malformed
// decision, or a panic gives reason policy_error and an error log. When
// in.Now is zero it is set from the clock; Client.AllowListed and
// Request.PathClass are always set by the engine. With a decision log,
// the decision carries the DecisionID of its line.
func (e *Engine) Decide(ctx context.Context, in Input) Decision {
	return e.decide(ctx, in, nil)
}

// decide is Decide, building the input document through shared when it is
// set (a replay deciding one line with two policies).
func (e *Engine) decide(ctx context.Context, in Input, shared *sharedDocument) (d Decision) {
	set := e.current.Load()
	var start time.Time
	if e.log != nil || e.observer != nil {
		start = time.Now()
	}
	abandoned := false
	defer func() {
		if r := recover(); r != nil {
			e.logger.Error("policy evaluation panicked", "point", string(in.Point), "policy_rev", set.revision,
				"panic", fmt.Sprint(r))
			d = failure(set.revision)
		}
		if e.log != nil && !abandoned {
			d.DecisionID = newDecisionID()
			e.writeDecision(in, d, time.Since(start))
		}
		if e.observer != nil && !abandoned {
			e.observer.Decided(in, d, time.Since(start))
		}
		if !abandoned {
			e.offerShadow(in, d)
		}
	}()
	e.complete(set, &in)
	if ctx.Err() != nil {
		abandoned = true
		return e.abandon(ctx, set, &in)
	}
	d, err := e.evaluate(ctx, set, &in, shared)
	if err != nil {
		if ctx.Err() != nil {
			abandoned = true
			return e.abandon(ctx, set, &in)
		}
		e.logger.Error("policy evaluation failed", "point", string(in.Point), "policy_rev", set.revision, "error", err)
		return failure(set.revision)
	}
	return d
}

// evaluate decides a completed input with set: the access point through
// the access cache, every other point by evaluating its decision rule.
func (e *Engine) evaluate(ctx context.Context, set *policySet, in *Input, shared *sharedDocument) (Decision, error) {
	if in.Point == PointAccess && in.Session != nil && set.route != nil && e.cache != nil {
		return e.decideAccess(ctx, set, in)
	}
	pq, ok := set.queries[in.Point]
	if !ok {
		return Decision{}, fmt.Errorf("unknown decision point %q", in.Point)
	}
	return set.eval(ctx, pq, shared.document(in), nil)
}

// sharedDocument builds one input's document once for several engines.
// Each engine completes the input with its own data (allow-listed
// networks, sensitive paths, the clock when now is missing), so the
// document is rebuilt only when an engine completes it otherwise than the
// last. The zero value is ready; a nil one builds every time. It is not
// safe for concurrent use.
type sharedDocument struct {
	built bool
	key   completion
	doc   ast.Value
}

// completion is what complete sets in an input.
type completion struct {
	now         int64
	allowListed bool
	ipUnknown   bool
	pathClass   string
}

func (s *sharedDocument) document(in *Input) ast.Value {
	if s == nil {
		return in.value()
	}
	key := completion{now: in.Now, allowListed: in.Client.AllowListed, ipUnknown: in.Client.IPUnknown, pathClass: in.Request.PathClass}
	if !s.built || s.key != key {
		s.built, s.key, s.doc = true, key, in.value()
	}
	return s.doc
}

// abandon answers an evaluation whose request was cancelled (its client
// went away, or the server is shutting down): still a denial, but not a
// failure of the policy, so it is logged at debug level and left out of
// the decision log, which records only decisions made.
func (e *Engine) abandon(ctx context.Context, set *policySet, in *Input) Decision {
	e.logger.Debug("policy evaluation abandoned: the request was cancelled", "point", string(in.Point),
		"policy_rev", set.revision, "error", ctx.Err())
	return failure(set.revision)
}

// complete fills in the facts the engine owns.
func (e *Engine) complete(set *policySet, in *Input) {
	if in.Now == 0 {
		in.Now = e.now().Unix()
	}
	in.Client.AllowListed = false
	if in.Client.IP != "" {
		// An address that does not parse is unknown, whoever built the
		// input; one that does is matched against the allow-list.
		addr, err := netip.ParseAddr(in.Client.IP)
		in.Client.IPUnknown = in.Client.IPUnknown || err != nil
		in.Client.AllowListed = err == nil && set.containsAddr(addr)
	}
	in.Request.PathClass = ""
	if in.Request.Route != "" {
		in.Request.PathClass = set.pathClass(in.Request.Route, in.Request.Path)
	}
}

var errUndefined = errors.New("decision is undefined")

// decide evaluates in.Point's decision rule. A tracer (Explain) gets an
// evaluation without the revision's shared caches, so that every rule
// shows in its trace.
func (s *policySet) decide(ctx context.Context, in *Input, tracer topdown.QueryTracer) (Decision, error) {
	pq, ok := s.queries[in.Point]
	if !ok {
		return Decision{}, fmt.Errorf("unknown decision point %q", in.Point)
	}
	return s.eval(ctx, pq, in.value(), tracer)
}

func (s *policySet) eval(ctx context.Context, pq rego.PreparedEvalQuery, input ast.Value, tracer topdown.QueryTracer) (Decision, error) {
	var rs rego.ResultSet
	var err error
	if tracer != nil {
		rs, err = pq.Eval(ctx, rego.EvalParsedInput(input), generateTerms, evalNoMetrics, rego.EvalQueryTracer(tracer))
	} else {
		cache := newEvalCache(s.consts)
		rs, err = pq.Eval(ctx, rego.EvalParsedInput(input), generateTerms, evalNoMetrics,
			rego.EvalBaseCache(s.data), rego.EvalVirtualCache(cache))
	}
	if err != nil {
		return Decision{}, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{}, errUndefined
	}
	if len(rs) > 1 {
		return Decision{}, fmt.Errorf("decision has %d results", len(rs))
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return Decision{}, fmt.Errorf("decision result is %T", rs[0].Expressions[0].Value)
	}
	d, err := decisionFromValue(t.Value)
	if err != nil {
		return Decision{}, err
	}
	d.Revision = s.revision
	return d, nil
}

// The options every evaluation passes, built once rather than per call.
var (
	generateTerms = rego.EvalGenerateJSON(keepTerm)
	evalNoMetrics = rego.EvalMetrics(noMetrics) // OPA would allocate a metrics set per call
)

var noMetrics = metrics.NoOp()

// keepTerm hands results back as AST terms, saving a conversion to Go
// values that decisionFromValue would only undo.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

func (s *policySet) message(reason string) string {
	if m, ok := s.messages[reason]; ok {
		return m
	}
	return "generic_denied"
}
