package policies

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
	"go4.org/netipx"
)

// sources are the policy files read from a directory, held in memory so
// that what is hashed is exactly what is compiled.
type sources struct {
	files    map[string][]byte // slash-separated path → contents
	revision string
}

// readSources reads the Rego modules and data files (.json, .yaml, .yml)
// below the root of fsys, skipping hidden files and directories. Test
// modules (*_test.rego) are read only when tests is true; they never count
// toward the revision.
func readSources(fsys fs.FS, tests bool) (*sources, error) {
	src := &sources{files: map[string][]byte{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isPolicyFile(name) {
			return nil
		}
		if isTestFile(name) && !tests {
			return nil
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		src.files[name] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	src.revision = src.hash()
	return src, nil
}

// hash is the revision of the sources: the first 16 hex digits of a
// SHA-256 over every non-test file's name and contents.
func (s *sources) hash() string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(s.files)) {
		if isTestFile(name) {
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(s.files[name]))
		h.Write(s.files[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func isPolicyFile(name string) bool {
	switch path.Ext(name) {
	case ".rego", ".json", ".yaml", ".yml":
		return true
	}
	return false
}

func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// parse turns sources into modules and one data document. As with
// `opa test DIR`, a data file's content is placed under the path of its
// directory (rego/data.json at the root of data).
func (s *sources) parse() (map[string]*ast.Module, map[string]any, error) {
	modules := map[string]*ast.Module{}
	data := map[string]any{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.files)) {
		b := s.files[name]
		if path.Ext(name) == ".rego" {
			m, err := ast.ParseModuleWithOpts(name, string(b), ast.ParserOptions{
				RegoVersion:       ast.RegoV1,
				ProcessAnnotation: true,
			})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			modules[name] = m
			continue
		}
		var doc any
		if err := util.Unmarshal(b, &doc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		for _, dir := range slices.Backward(dirParts(name)) {
			doc = map[string]any{dir: doc}
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: data at the root must be an object", name))
			continue
		}
		if err := mergeData(data, obj, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return modules, data, errors.Join(errs...)
}

func dirParts(name string) []string {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	return strings.Split(dir, "/")
}

func mergeData(dst, src map[string]any, at []string) error {
	for k, v := range src {
		existing, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		a, aok := existing.(map[string]any)
		b, bok := v.(map[string]any)
		if !aok || !bok {
			return fmt.Errorf("data.%s is defined twice", strings.Join(append(at, k), "."))
		}
		if err := mergeData(a, b, append(at, k)); err != nil {
			return err
		}
	}
	return nil
}

// capabilities are the built-ins a policy may call: all of this OPA
// version's except those that reach the network or read the clock or
// randomness (every built-in OPA marks nondeterministic, and these by
// name). A decision must follow from input and data alone, or the access
// cache, the load-time constants (evalcache.go) and the tests would lie.
func capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	banned := map[string]bool{
		"http.send": true, "net.lookup_ip_addr": true, "opa.runtime": true,
		"time.now_ns": true, "rand.intn": true, "uuid.rfc4122": true,
	}
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool { return banned[b.Name] || b.Nondeterministic })
	return caps
}

// compile builds a compiler and store from sources. Strict mode matches
// `opa check --strict`.
func compile(ctx context.Context, modules map[string]*ast.Module, data map[string]any, compiler *ast.Compiler) (storage.Store, error) {
	// Returning AST values saves converting data on every read during
	// evaluation (a third of a login decision).
	store := inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Abort(ctx, txn)
	compiler.WithCapabilities(capabilities()).
		WithStrict(true).
		WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn))
	if compiler.Compile(modules); compiler.Failed() {
		return nil, compiler.Errors
	}
	return store, nil
}

// policySet is one compiled revision of the policies with everything the
// engine derives from it. It is never modified after load.
type policySet struct {
	revision string
	compiler *ast.Compiler
	store    storage.Store
	queries  map[Point]rego.PreparedEvalQuery
	// route is access's route_decision, nil when the policy has none (then
	// access is evaluated whole on every request).
	route    *rego.PreparedEvalQuery
	messages map[string]string
	// data and consts are shared by every evaluation; see evalcache.go.
	data   *dataCache
	consts *constants
	knobs
}

// knobs are the data settings the engine applies in Go.
type knobs struct {
	allowListed     *netipx.IPSet
	ipWindow        time.Duration
	stepUpWindow    time.Duration
	maxFailures     int
	maxStepUps      int
	passwords       PasswordRules
	sendWindows     SendLimitWindows
	enrolment       EnrolmentRules
	recovery        RecoveryRules
	routePrefixes   map[string][]string
	defaultPrefixes []string
}

// configData is the schema of data.portcullis.config. Load checks the
// data against it: an unknown or misspelt setting, a missing one or one of
// the wrong type would otherwise make a rule silently undefined (a lockout
// that never fires), so such data is refused. Settings of your own belong
// elsewhere in data. Every field must be present except inside routes.
type configData struct {
	Anonymizer *struct {
		Block            map[string]bool `json:"block"`
		AllowUncheckedIP *bool           `json:"allow_unchecked_ip"`
	} `json:"anonymizer"`
	AllowListedNetworks *[]string `json:"allow_listed_networks"`
	Lockout             *struct {
		MaxConsecutiveFailures *int  `json:"max_consecutive_failures"`
		RevealBeforePassword   *bool `json:"reveal_before_password"`
	} `json:"lockout"`
	Throttle *struct {
		MaxIPFailures          *int `json:"max_ip_failures"`
		IPFailureWindowSeconds *int `json:"ip_failure_window_seconds"`
	} `json:"throttle"`
	StepUp *struct {
		Methods                  *[]string      `json:"methods"`
		AllowWithoutSecondFactor *bool          `json:"allow_without_second_factor"`
		Failures                 *sendLimitData `json:"failures"`
		MaxConsecutiveFailures   *int           `json:"max_consecutive_failures"`
	} `json:"step_up"`
	Devices *struct {
		OfferRegistration *bool `json:"offer_registration"`
		LifetimeSeconds   *int  `json:"lifetime_seconds"`
	} `json:"devices"`
	Codes *struct {
		TTLSeconds            *int                       `json:"ttl_seconds"`
		MaxAttempts           *int                       `json:"max_attempts"`
		MaxResends            *int                       `json:"max_resends"`
		ResendIntervalSeconds *int                       `json:"resend_interval_seconds"`
		LineTypes             map[string]map[string]bool `json:"line_types"`
		Email                 *struct {
			Enabled *bool `json:"enabled"`
		} `json:"email"`
		SendLimits *struct {
			PerUser        *sendLimitData `json:"per_user"`
			PerNumber      *sendLimitData `json:"per_number"`
			PerAddress     *sendLimitData `json:"per_address"`
			PerCallingCode *sendLimitData `json:"per_calling_code"`
		} `json:"send_limits"`
	} `json:"codes"`
	Passwords *struct {
		MinLength *int `json:"min_length"`
		MaxLength *int `json:"max_length"`
		// MinGuessesLog10 is required: a policy without it would refuse
		// every new password as guessable.
		MinGuessesLog10 *int `json:"min_guesses_log10"`
	} `json:"passwords"`
	Session *struct {
		IdleSeconds *int `json:"idle_seconds"`
		MaxSeconds  *int `json:"max_seconds"`
	} `json:"session"`
	Settings *struct {
		StepUpWindowSeconds *int      `json:"step_up_window_seconds"`
		StepUpMethods       *[]string `json:"step_up_methods"`
		Changes             map[string]struct {
			Notify string `json:"notify"`
		} `json:"changes"`
	} `json:"settings"`
	Recovery *struct {
		Methods                   map[string][]string `json:"methods"`
		PasswordIdentityQuestions *bool               `json:"password_identity_questions"`
		MaxAttemptsPerAccount     *int                `json:"max_attempts_per_account"`
		MaxAttemptsPerAddress     *int                `json:"max_attempts_per_address"`
		WindowSeconds             *int                `json:"window_seconds"`
	} `json:"recovery"`
	Enrolment *struct {
		EligibleStatuses       *[]string `json:"eligible_statuses"`
		MaxAttemptsPerIdentity *int      `json:"max_attempts_per_identity"`
		MaxAttemptsPerAddress  *int      `json:"max_attempts_per_address"`
		WindowSeconds          *int      `json:"window_seconds"`
	} `json:"enrolment"`
	Access *struct {
		RequireProduct      *bool                `json:"require_product"`
		BlockAnonymizers    *bool                `json:"block_anonymizers"`
		StepUpWindowSeconds *int                 `json:"step_up_window_seconds"`
		StepUpMethods       *[]string            `json:"step_up_methods"`
		DefaultRoute        *routeData           `json:"default_route"`
		Routes              map[string]routeData `json:"routes"`
	} `json:"access"`
}

// sendLimitData is one of codes.send_limits: at most Max sends per fixed
// window of WindowSeconds.
type sendLimitData struct {
	Max           *int `json:"max"`
	WindowSeconds *int `json:"window_seconds"`
}

// routeData are one route's access settings; all are optional.
type routeData struct {
	SensitivePrefixes   []string `json:"sensitive_prefixes"`
	SessionIdleSeconds  *int     `json:"session_idle_seconds,omitempty"`
	SessionMaxSeconds   *int     `json:"session_max_seconds,omitempty"`
	StepUpWindowSeconds *int     `json:"step_up_window_seconds,omitempty"`
	RequireSecondFactor *bool    `json:"require_second_factor,omitempty"`
}

// missingFields names the nil pointer and nil map fields of v, a struct,
// recursively; routeData fields are optional.
func missingFields(v reflect.Value, at string) []string {
	var out []string
	t := v.Type()
	for i := range t.NumField() {
		name := at + "." + strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Pointer, reflect.Map:
			if f.IsNil() {
				out = append(out, name)
				continue
			}
			if f.Kind() == reflect.Pointer && f.Elem().Kind() == reflect.Struct && f.Elem().Type() != reflect.TypeFor[routeData]() {
				out = append(out, missingFields(f.Elem(), name)...)
			}
		}
	}
	return out
}

func load(ctx context.Context, src *sources) (*policySet, error) {
	modules, data, err := src.parse()
	if err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler().WithEnablePrintStatements(false)
	store, err := compile(ctx, modules, data, compiler)
	if err != nil {
		return nil, err
	}
	set := &policySet{
		revision: src.revision,
		compiler: compiler,
		store:    store,
		queries:  map[Point]rego.PreparedEvalQuery{},
	}
	if set.knobs, err = readKnobs(data); err != nil {
		return nil, err
	}
	if _, err := readDeviations(data); err != nil {
		return nil, err
	}
	if set.data, err = newDataCache(ctx, store); err != nil {
		return nil, err
	}
	if set.consts, err = readConstants(ctx, set); err != nil {
		return nil, err
	}
	for _, p := range Points() {
		ref := decisionRef(p, "decision")
		if len(compiler.GetRulesExact(ref)) == 0 {
			return nil, fmt.Errorf("no rule %s", ref)
		}
		pq, err := set.prepare(ctx, ref)
		if err != nil {
			return nil, err
		}
		set.queries[p] = pq
	}
	routeRef := decisionRef(PointAccess, "route_decision")
	if len(compiler.GetRulesExact(routeRef)) > 0 {
		if err := checkCacheable(compiler, routeRef); err != nil {
			return nil, err
		}
		pq, err := set.prepare(ctx, routeRef)
		if err != nil {
			return nil, err
		}
		set.route = &pq
	}
	if set.messages, err = readMessages(ctx, set); err != nil {
		return nil, err
	}
	return set, nil
}

func decisionRef(p Point, rule string) ast.Ref {
	return ast.MustParseRef("data.portcullis").Append(ast.StringTerm(string(p))).Append(ast.StringTerm(rule))
}

func (s *policySet) prepare(ctx context.Context, ref ast.Ref) (rego.PreparedEvalQuery, error) {
	r := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(s.compiler),
		rego.Store(s.store),
		rego.StrictBuiltinErrors(true),
	)
	pq, err := r.PrepareForEval(ctx)
	if err != nil {
		return pq, fmt.Errorf("prepare %s: %w", ref, err)
	}
	return pq, nil
}

// readMessages evaluates data.portcullis.outcome.messages, the message key
// for each reason, for the reasons the engine applies in Go.
func readMessages(ctx context.Context, s *policySet) (map[string]string, error) {
	rs, err := rego.New(
		rego.Query("data.portcullis.outcome.messages"),
		rego.Compiler(s.compiler),
		rego.Store(s.store),
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	messages := map[string]string{}
	if len(rs) == 0 {
		return messages, nil
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, errors.New("data.portcullis.outcome.messages is not an object")
	}
	for k, v := range obj {
		if s, ok := v.(string); ok {
			messages[k] = s
		}
	}
	return messages, nil
}

func readKnobs(data map[string]any) (knobs, error) {
	var k knobs
	var cfg configData
	portcullis, _ := data["portcullis"].(map[string]any)
	raw, ok := portcullis["config"]
	if !ok {
		return k, errors.New("no data.portcullis.config")
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return k, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return k, fmt.Errorf("data.portcullis.config: %w", err)
	}
	if missing := missingFields(reflect.ValueOf(cfg), "data.portcullis.config"); len(missing) > 0 {
		return k, fmt.Errorf("missing settings: %s", strings.Join(missing, ", "))
	}
	var nets netipx.IPSetBuilder
	for _, s := range *cfg.AllowListedNetworks {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return k, fmt.Errorf("data.portcullis.config.allow_listed_networks: %w", err)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		nets.AddPrefix(prefix.Masked())
	}
	set, err := nets.IPSet()
	if err != nil {
		return k, fmt.Errorf("data.portcullis.config.allow_listed_networks: %w", err)
	}
	k.allowListed = set
	k.ipWindow = time.Duration(*cfg.Throttle.IPFailureWindowSeconds) * time.Second
	if k.ipWindow <= 0 {
		return k, errors.New("data.portcullis.config.throttle.ip_failure_window_seconds must be positive")
	}
	if cfg.StepUp.Failures == nil || cfg.StepUp.Failures.Max == nil || cfg.StepUp.Failures.WindowSeconds == nil ||
		*cfg.StepUp.Failures.Max < 0 || *cfg.StepUp.Failures.WindowSeconds <= 0 {
		return k, errors.New("data.portcullis.config.step_up.failures needs max (0 or more) and a positive window_seconds")
	}
	k.stepUpWindow = time.Duration(*cfg.StepUp.Failures.WindowSeconds) * time.Second
	// NIST SP 800-63B-4 §3.2.2 allows no more than 100 failures in a row.
	k.maxStepUps = *cfg.StepUp.MaxConsecutiveFailures
	if k.maxStepUps < 1 || k.maxStepUps > 100 {
		return k, fmt.Errorf("data.portcullis.config.step_up.max_consecutive_failures must be 1 to 100, got %d", k.maxStepUps)
	}
	k.maxFailures = *cfg.Lockout.MaxConsecutiveFailures
	if k.maxFailures <= 0 {
		return k, errors.New("data.portcullis.config.lockout.max_consecutive_failures must be positive")
	}
	k.passwords = PasswordRules{MinLength: *cfg.Passwords.MinLength, MaxLength: *cfg.Passwords.MaxLength,
		MinGuessesLog10: *cfg.Passwords.MinGuessesLog10}
	if g := k.passwords.MinGuessesLog10; g < 0 || g > 100 {
		return k, fmt.Errorf("data.portcullis.config.passwords.min_guesses_log10 must be 0 to 100, got %d", g)
	}
	if k.passwords.MinLength <= 0 {
		return k, errors.New("data.portcullis.config.passwords.min_length must be positive")
	}
	if k.passwords.MaxLength < k.passwords.MinLength {
		return k, errors.New("data.portcullis.config.passwords.max_length must be at least min_length")
	}
	if *cfg.Devices.LifetimeSeconds <= 0 {
		return k, errors.New("data.portcullis.config.devices.lifetime_seconds must be positive")
	}
	limits := cfg.Codes.SendLimits
	for _, l := range []struct {
		name   string
		limit  *sendLimitData
		window *time.Duration
	}{
		{"per_user", limits.PerUser, &k.sendWindows.User},
		{"per_number", limits.PerNumber, &k.sendWindows.Number},
		{"per_address", limits.PerAddress, &k.sendWindows.Address},
		{"per_calling_code", limits.PerCallingCode, &k.sendWindows.CallingCode},
	} {
		at := "data.portcullis.config.codes.send_limits." + l.name
		if *l.limit.Max < 0 {
			return k, fmt.Errorf("%s.max must not be negative", at)
		}
		if *l.limit.WindowSeconds <= 0 {
			return k, fmt.Errorf("%s.window_seconds must be positive", at)
		}
		*l.window = time.Duration(*l.limit.WindowSeconds) * time.Second
	}
	enrol := cfg.Enrolment
	if *enrol.WindowSeconds <= 0 || *enrol.MaxAttemptsPerIdentity < 0 || *enrol.MaxAttemptsPerAddress < 0 {
		return k, errors.New("data.portcullis.config.enrolment needs a positive window_seconds and max_attempts_per_identity and max_attempts_per_address of 0 or more")
	}
	k.enrolment = EnrolmentRules{Window: time.Duration(*enrol.WindowSeconds) * time.Second,
		EligibleStatuses: slices.Clone(*enrol.EligibleStatuses)}
	rec := cfg.Recovery
	if *rec.WindowSeconds <= 0 || *rec.MaxAttemptsPerAccount < 0 || *rec.MaxAttemptsPerAddress < 0 {
		return k, errors.New("data.portcullis.config.recovery needs a positive window_seconds and max_attempts_per_account and max_attempts_per_address of 0 or more")
	}
	k.recovery = RecoveryRules{Window: time.Duration(*rec.WindowSeconds) * time.Second,
		PasswordIdentityQuestions: *rec.PasswordIdentityQuestions, Methods: map[string][]string{},
		CodeLifetime: time.Duration(*cfg.Codes.TTLSeconds) * time.Second}
	for kind, methods := range rec.Methods {
		k.recovery.Methods[kind] = slices.Clone(methods)
	}
	k.defaultPrefixes = normalisePrefixes(cfg.Access.DefaultRoute.SensitivePrefixes)
	k.routePrefixes = map[string][]string{}
	for name, r := range cfg.Access.Routes {
		k.routePrefixes[name] = normalisePrefixes(r.SensitivePrefixes)
	}
	return k, nil
}

// normalisePrefixes cleans and lower-cases prefixes, longest first.
func normalisePrefixes(prefixes []string) []string {
	out := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, normalisePath(p))
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return slices.Compact(out)
}

// normalisePath is how a path is compared with sensitive prefixes: path
// parameters (";jsessionid=...") removed from each segment, cleaned ("//",
// ".", ".." resolved), lower case. Upstream apps differ in how they treat
// case and path parameters; matching the widest reading means a path never
// escapes its class by spelling.
func normalisePath(p string) string {
	if strings.IndexByte(p, ';') >= 0 {
		segments := strings.Split(p, "/")
		for i, s := range segments {
			segments[i], _, _ = strings.Cut(s, ";")
		}
		p = strings.Join(segments, "/")
	}
	return strings.ToLower(path.Clean("/" + p))
}

// pathClass is the longest of route's sensitive prefixes that p lies under,
// by whole segments, or "".
func (k *knobs) pathClass(route, p string) string {
	prefixes, ok := k.routePrefixes[route]
	if !ok {
		prefixes = k.defaultPrefixes
	}
	if len(prefixes) == 0 {
		return ""
	}
	p = normalisePath(p)
	for _, prefix := range prefixes {
		if prefix == "/" || p == prefix || strings.HasPrefix(p, prefix+"/") {
			return prefix
		}
	}
	return ""
}

func (k *knobs) containsAddr(addr netip.Addr) bool {
	return k.allowListed != nil && addr.IsValid() && k.allowListed.Contains(addr.Unmap().WithZone(""))
}

// checkCacheable makes sure the rules behind access's route_decision read
// only the input fields the access cache is keyed by. A policy that reads
// anything else (the time, the client address or its failure count, the raw
// path) would be cached wrongly, so it is refused at load.
func checkCacheable(c *ast.Compiler, ref ast.Ref) error {
	seen := map[*ast.Rule]bool{}
	var queue []*ast.Rule
	push := func(r *ast.Rule) {
		for ; r != nil; r = r.Else {
			if !seen[r] {
				seen[r] = true
				queue = append(queue, r)
			}
		}
	}
	for _, r := range c.GetRulesExact(ref) {
		push(r)
	}
	var errs []error
	check := func(r *ast.Rule, x ast.Ref) {
		if x[0].Equal(ast.InputRootDocument) && !cacheableInput(x) {
			errs = append(errs, fmt.Errorf("%s: %s reads %s, which the access cache does not key on", r.Location, ref, x))
		}
	}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		for dep := range c.Graph.Dependencies(r) {
			if dr, ok := dep.(*ast.Rule); ok {
				push(dr)
			}
		}
		ast.WalkRefs(r.Head, func(x ast.Ref) bool { check(r, x); return false })
		ast.WalkExprs(r.Body, func(expr *ast.Expr) bool {
			if isSessionPresenceTest(expr) {
				return false
			}
			ast.WalkRefs(expr, func(x ast.Ref) bool { check(r, x); return false })
			return true
		})
	}
	return errors.Join(errs...)
}

// sessionRef is input.session, which route_decision may test for presence
// ("input.session" or "not input.session") but not read whole.
var sessionRef = ast.MustParseRef("input.session")

func isSessionPresenceTest(expr *ast.Expr) bool {
	t, ok := expr.Terms.(*ast.Term)
	if !ok {
		return false
	}
	ref, ok := t.Value.(ast.Ref)
	return ok && ref.Equal(sessionRef)
}

func cacheableInput(x ast.Ref) bool {
	var parts []string
	for _, t := range x[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		parts = append(parts, string(s))
	}
	switch {
	case len(parts) == 0:
		return false
	case parts[0] == "account":
		return true
	case parts[0] == "session":
		return len(parts) >= 2 && parts[1] == "methods"
	case parts[0] == "request":
		return len(parts) >= 2 && (parts[1] == "route" || parts[1] == "method" || parts[1] == "path_class")
	case parts[0] == "client":
		// The address's facts, never the address itself: sessions from
		// addresses alike share entries.
		return len(parts) >= 2 && (parts[1] == "facts" || parts[1] == "ip_unknown" || parts[1] == "allow_listed")
	}
	return false
}
