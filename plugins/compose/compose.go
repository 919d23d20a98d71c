package compose

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/certs"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/admin"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/selfservice"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
	"github.com/portcullis/portcullis/plugins/delivery/smtp"
	"github.com/portcullis/portcullis/plugins/delivery/twilio"
	"github.com/portcullis/portcullis/plugins/delivery/webhook"
	"github.com/portcullis/portcullis/plugins/geoip"
	"github.com/portcullis/portcullis/plugins/phone"
	"github.com/portcullis/portcullis/plugins/store/combined"
	"github.com/portcullis/portcullis/policies"
)

// geoipReloads counts the GeoIP databases' reloads by outcome; a refused
// reload (a file that failed its checks) keeps the old database serving.
func geoipReloads(r *geoip.Reader) prometheus.Collector {
	desc := prometheus.NewDesc("portcullis_geoip_reloads_total",
		"GeoIP database reloads by result; a failed one keeps the loaded database.", []string{"result"}, nil)
	return collectorFunc{descs: []*prometheus.Desc{desc}, collect: func(ch chan<- prometheus.Metric) {
		st := r.ReloadStats()
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(st.Succeeded), "ok")
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(st.Failed), "failed")
	}}
}

// collectorFunc is a prometheus.Collector of the descriptions it lists,
// whose metrics collect makes on each scrape.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// NewPhones builds the phone classifier: libphonenumber, and the carrier
// lookup when one is configured.
func NewPhones(c config.Phone, logger *slog.Logger) (*phone.Classifier, error) {
	pc := phone.Config{DefaultRegion: c.DefaultRegion, Logger: logger}
	if cl := c.CarrierLookup; cl.URL != "" {
		secret, err := cl.Secret()
		if err != nil {
			return nil, err
		}
		lookup, err := phone.NewHTTPCarrierLookup(phone.HTTPCarrierConfig{URL: cl.URL, Header: cl.Header, Secret: secret,
			Field: cl.Field, Types: cl.Types, Timeout: cl.Timeout})
		if err != nil {
			return nil, fmt.Errorf("phone.carrier_lookup: %w", err)
		}
		pc.Carrier = lookup
	}
	p, err := phone.New(pc)
	if err != nil {
		return nil, fmt.Errorf("phone: %w", err)
	}
	return p, nil
}

// newSender builds the router that sends each channel's messages with the
// plugin configured for it. A channel without one sends nothing; with none
// at all no security code can be sent, and the start-up says so.
func newSender(cfg *config.File, logger *slog.Logger) (notify.Router, error) {
	router := notify.Router{}
	outboxes := map[string]notify.Sender{} // by path: one file, one sender
	for _, c := range cfg.Delivery.Channels() {
		var s notify.Sender
		var err error
		if c.Outbox != nil {
			path := cfg.DataPath(c.Outbox.Path)
			if s = outboxes[path]; s == nil {
				logger.Warn("messages are written to an outbox file, not delivered; it holds live security codes", "path", path)
				s, err = outbox.New(outbox.Config{Path: path, Logger: logger})
				outboxes[path] = s
			}
		} else {
			s, err = newChannelSender(c, logger)
		}
		if err != nil {
			return nil, fmt.Errorf("delivery.%s: %w", c.Name, err)
		}
		router[c.Name] = s
	}
	if len(router) == 0 {
		logger.Warn("no delivery configured: security codes cannot be sent, and a step-up by code answers code_not_sent")
	}
	return router, nil
}

// newChannelSender builds the webhook, Twilio or SMTP sender a channel
// names (the config package checked that it names one).
func newChannelSender(c config.NamedChannel, logger *slog.Logger) (notify.Sender, error) {
	switch {
	case c.Webhook != nil:
		secret, err := c.Webhook.Secret()
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		return webhook.New(webhook.Config{URL: c.Webhook.URL, Secret: secret, Timeout: c.Webhook.Timeout, Logger: logger})
	case c.Twilio != nil:
		t := c.Twilio
		secret, err := t.Secret()
		if err != nil {
			return nil, fmt.Errorf("twilio: %w", err)
		}
		return twilio.New(twilio.Config{BaseURL: t.BaseURL, AccountSID: t.AccountSID, APIKeySID: t.APIKeySID, Secret: secret,
			From: t.From, MessagingServiceSID: t.MessagingServiceSID, Timeout: t.Timeout, Logger: logger})
	case c.SMTP != nil:
		m := c.SMTP
		password, err := m.Password()
		if err != nil {
			return nil, fmt.Errorf("smtp: %w", err)
		}
		return smtp.New(smtp.Config{Host: m.Host, Port: m.Port, Security: m.Security, From: m.From, Username: m.Username,
			Password: password, HeloName: m.HeloName, Timeout: m.Timeout, Logger: logger})
	}
	return nil, errors.New("no sender")
}

// CertsConfig is the TLS part of cfg.
func CertsConfig(cfg *config.File) certs.Config {
	return certs.Config{Mode: cfg.TLS.Mode, DataDir: cfg.DataDir, Hosts: cfg.Hosts(),
		ACME:  certs.ACMEConfig{CA: cfg.TLS.ACME.CA, Email: cfg.TLS.ACME.Email, OnDemand: cfg.TLS.ACME.OnDemand, AskURL: cfg.TLS.ACME.Ask},
		Files: certs.FilesConfig{Cert: cfg.TLS.Files.Cert, Key: cfg.TLS.Files.Key}}
}

// OpenStore creates data_dir (mode 0700) if it is missing, checks the
// secret files' permissions and opens the store (openBackends). serve, the
// demo and the admin commands all open the store through it.
func OpenStore(ctx context.Context, cfg *config.File, logger *slog.Logger) (*combined.Store, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := checkSecretFiles(cfg, logger); err != nil {
		return nil, err
	}
	return openBackends(ctx, cfg, logger)
}

// SecretFiles are the files of cfg that hold secrets: the SQLite store
// (signing keys, password hashes) with its -wal and -shm, or the files of
// the PostgreSQL DSN and the Redis URL (they may hold passwords), the code
// key, the private keys, the carrier lookup's and the delivery plugins'
// secrets, the admin API's tokens, and outbox files (they hold security
// codes).
func SecretFiles(cfg *config.File) []string {
	var files []string
	if cfg.Store.Driver == "sqlite" {
		db := cfg.StorePath()
		files = append(files, db, db+"-wal", db+"-shm")
	}
	for _, f := range []string{cfg.Store.Postgres.DSNFile, cfg.Store.Redis.URLFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	files = append(append(files, cfg.CodeKeyPath()), certs.KeyFiles(CertsConfig(cfg))...)
	if f := cfg.Phone.CarrierLookup.SecretFile; f != "" {
		files = append(files, f)
	}
	files = append(files, cfg.Delivery.SecretFiles()...)
	for _, t := range cfg.Admin.Tokens {
		files = append(files, t.File) // the admin API's bearer tokens
	}
	for _, c := range cfg.Delivery.Channels() {
		if c.Outbox != nil {
			files = append(files, cfg.DataPath(c.Outbox.Path)) // it holds security codes
		}
	}
	return files
}

// checkSecretFiles refuses a secret file that exists and that group or
// others can read or write, naming it, its mode and the fix; with
// store.allow_insecure_permissions it logs a warning instead. Missing files
// pass: the gateway creates them 0600.
func checkSecretFiles(cfg *config.File, logger *slog.Logger) error {
	var errs []error
	for _, p := range SecretFiles(cfg) {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("check permissions: %w", err))
			continue
		}
		perm := fi.Mode().Perm()
		if perm&0o077 == 0 {
			continue
		}
		if cfg.Store.AllowInsecurePermissions {
			logger.Warn("secret file is open to other users; starting anyway because store.allow_insecure_permissions is set",
				"path", p, "mode", fmt.Sprintf("%04o", perm), "fix", "chmod 600 "+p)
			continue
		}
		errs = append(errs, fmt.Errorf("check permissions: %s has mode %04o: group or others can read or write it, and it holds secrets; fix it with `chmod 600 %s` (or set store.allow_insecure_permissions: true to start anyway)", p, perm, p))
	}
	return errors.Join(errs...)
}

// NewPolicyEngine loads the policies, with the decision log file when one
// is configured (else the log is nil, and closing it does nothing) and obs,
// if not nil, told of every decision.
func NewPolicyEngine(ctx context.Context, c config.Policies, logger *slog.Logger, obs policies.Observer) (*policies.Engine, *DecisionLog, error) {
	pc, err := PolicySource(c)
	if err != nil {
		return nil, nil, err
	}
	pc.Logger, pc.Observer = logger, obs
	var dlog *DecisionLog
	if c.DecisionLog != "" {
		maxSize, err := c.DecisionLogMaxBytes()
		if err != nil {
			return nil, nil, fmt.Errorf("decision log: %w", err)
		}
		if dlog, err = openDecisionLog(c.DecisionLog, maxSize, c.DecisionLogMaxFiles, logger); err != nil {
			return nil, nil, err
		}
		pc.DecisionLog = dlog
	}
	engine, err := policies.New(ctx, pc)
	if err != nil {
		dlog.Close()
		return nil, nil, err
	}
	return engine, dlog, nil
}

// decisionLogDrops counts the decision log lines dropped because the file
// could not keep up (always 0 without a decision log).
func decisionLogDrops(dlog *DecisionLog) prometheus.Collector {
	desc := prometheus.NewDesc("portcullis_decision_log_dropped_total",
		"Decision log lines dropped because the log file could not keep up; each drop is also logged as a warning.", nil, nil)
	return collectorFunc{descs: []*prometheus.Desc{desc}, collect: func(ch chan<- prometheus.Metric) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(dlog.Dropped()))
	}}
}

// every calls f each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func adminHandler(reg *prometheus.Registry, db store.Upkeep, profiler bool) http.Handler {
	mux := http.NewServeMux()
	if profiler {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// instrument counts requests and their durations by status code. Each
// code's observer is bound once, at its first use, so that a request pays
// no label lookup.
func instrument(reg prometheus.Registerer, next http.Handler) http.Handler {
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "portcullis_http_request_duration_seconds", Help: "Time to serve a request, by status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"code"})
	reg.MustRegister(dur)
	observer := byStatus(dur)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		observer(code).Observe(time.Since(start).Seconds())
	})
}

// byStatus returns the observer of vec for a status code, with the code
// as vec's last label after labels. Each code's observer is bound once, at
// its first use, so that observing costs no label lookup.
func byStatus(vec *prometheus.HistogramVec, labels ...string) func(code int) prometheus.Observer {
	var bound [600]atomic.Pointer[prometheus.Observer]
	with := func(code int) prometheus.Observer {
		return vec.WithLabelValues(append(slices.Clone(labels), strconv.Itoa(code))...)
	}
	return func(code int) prometheus.Observer {
		if code < 100 || code >= len(bound) {
			return with(code)
		}
		if o := bound[code].Load(); o != nil {
			return *o
		}
		o := with(code)
		bound[code].Store(&o)
		return o
	}
}

// upstreamMetrics times each route's upstream responses by status code
// (gateway.Deps.UpstreamObserver); an upstream that could not be reached
// is code "error".
func upstreamMetrics(reg prometheus.Registerer) func(route string) func(status int, took time.Duration) {
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "portcullis_upstream_duration_seconds", Help: "Time to an upstream's response headers, by route and status code (error: not reached).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route", "code"})
	reg.MustRegister(dur)
	return func(route string) func(int, time.Duration) {
		observer := byStatus(dur, route)
		failed := dur.WithLabelValues(route, "error")
		return func(status int, took time.Duration) {
			if status == 0 {
				failed.Observe(took.Seconds())
				return
			}
			observer(status).Observe(took.Seconds())
		}
	}
}

// statusWriter remembers the status a handler answered with. Flushing,
// hijacking and the rest reach the connection's writer through Unwrap
// (http.ResponseController), as the reverse proxy uses them.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush is here for handlers that assert http.Flusher rather than use a
// ResponseController.
func (w *statusWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Gateway is a Portcullis gateway built from its configuration file: the
// store, the policies with their decision log, the signer, GeoIP, phones,
// delivery and the gateway's handler, with the admin API, metrics and
// health checks. It opens no listener and terminates no TLS: cmd/portcullis
// serves it on its own listeners, and a web server that embeds Portcullis
// serves it on its own.
type Gateway struct {
	Store    *combined.Store
	Server   *gateway.Server
	Policy   *policies.Engine
	Signer   *assertion.Signer
	Phones   *phone.Classifier
	Registry *prometheus.Registry

	cfg     *config.File
	logger  *slog.Logger
	handler http.Handler
	admin   http.Handler
	dir     selfservice.Directory
	geoip   *geoip.Reader
	closers []func() // in the order they run
}

// New builds the gateway that cfg describes. Everything it opened is
// closed again when it fails; otherwise Close releases it. ctx bounds the
// opening only: Run does the gateway's background work.
func New(ctx context.Context, cfg *config.File, logger *slog.Logger) (_ *Gateway, err error) {
	g := &Gateway{cfg: cfg, logger: logger, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	if g.Store, err = OpenStore(ctx, cfg, logger); err != nil {
		return nil, err
	}
	g.onClose(func() { g.Store.Close() })
	if g.Signer, err = assertion.NewSigner(ctx, g.Store, assertion.SignerConfig{Issuer: cfg.Issuer, TTL: cfg.Identity.AssertionTTL}); err != nil {
		return nil, err
	}
	engine, dlog, err := NewPolicyEngine(ctx, cfg.Policies, logger, newPolicyMetrics(g.Registry))
	if err != nil {
		return nil, err
	}
	g.Policy = engine
	g.onClose(func() { dlog.Close() })
	if err := applyShadow(ctx, engine, cfg.Policies); err != nil {
		return nil, err
	}
	g.onClose(func() { engine.SetShadow(context.Background(), nil) }) //nolint:errcheck // turning off cannot fail
	dir, closeDir, err := OpenDirectory(cfg.Directory, logger)
	if err != nil {
		return nil, err
	}
	g.dir = dir
	g.onClose(closeDir)
	codeKey, err := loadCodeKey(cfg.CodeKeyPath())
	if err != nil {
		return nil, err
	}
	db := g.Store
	deps := gateway.Deps{Users: db, Hits: db, Sessions: db, Records: db, Devices: db, Factors: db,
		CodeKey: codeKey, Signer: g.Signer, Policy: engine, Directory: dir, Invalidator: Invalidator(db, logger), Logger: logger}
	g.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		shadowMetrics(engine), decisionLogDrops(dlog))
	if cfg.GeoIP.AnonymousIP != "" {
		reader, err := geoip.Open(geoip.Config{AnonymousIPPath: cfg.GeoIP.AnonymousIP, CountryPath: cfg.GeoIP.Country, Logger: logger})
		if err != nil {
			return nil, err
		}
		g.geoip = reader
		g.onClose(func() { reader.Close() })
		deps.Signals = reader
		g.Registry.MustRegister(geoipReloads(reader))
	} else {
		logger.Warn("no anonymous-ip database: every address is unchecked and the policies decide")
	}
	if g.Phones, err = NewPhones(cfg.Phone, logger); err != nil {
		return nil, err
	}
	deps.Phones = g.Phones
	sender, err := newSender(cfg, logger)
	if err != nil {
		return nil, err
	}
	deps.Sender = newCountingSender(sender, g.Registry)
	deps.UpstreamObserver = upstreamMetrics(g.Registry)
	gcfg := cfg.Gateway()
	if gcfg.Theme, err = cfg.Theme(); err != nil {
		return nil, err
	}
	if g.Server, err = gateway.New(gcfg, deps); err != nil {
		return nil, err
	}
	g.onClose(g.Server.Close)
	logger.Info("password hashing", "max_concurrent", gcfg.Password.MaxConcurrent, "nice", gcfg.Password.Nice)
	adminAPI, err := newAdminAPI(cfg, db, g.Server, g.Signer, g.Phones, engine, codeKey, logger)
	if err != nil {
		return nil, err
	}
	adminMux := http.NewServeMux()
	adminMux.Handle(admin.Prefix, adminAPI)
	adminMux.Handle("/", adminHandler(g.Registry, db, cfg.Listen.Pprof))
	g.admin = adminMux
	g.handler = instrument(g.Registry, g.Server)
	return g, nil
}

func (g *Gateway) onClose(f func()) { g.closers = append(g.closers, f) }

// Handler serves the gateway: its sign-in pages and API under
// /.portcullis/, and every route's upstream behind them. It expects TLS
// terminated in front of it, by cmd/portcullis or by the embedding server.
func (g *Gateway) Handler() http.Handler { return g.handler }

// AdminHandler serves the admin API, /metrics, /healthz and /readyz (and
// the profiler when listen.pprof is on). It belongs on a private listener.
func (g *Gateway) AdminHandler() http.Handler { return g.admin }

// Run does the gateway's background work until ctx ends: it drops the
// sessions other replicas end from this one's cache, reloads changed
// policies and GeoIP databases, the shadow policies and the signing keys a
// rotation elsewhere made, and sweeps expired records. A value on reload
// (SIGHUP, for cmd/portcullis; nil for none) re-reads the customer
// directory and the configuration file's shadow policies.
func (g *Gateway) Run(ctx context.Context, reload <-chan os.Signal) {
	var wg sync.WaitGroup
	wg.Go(func() { runShadow(ctx, g.Policy, g.cfg, g.logger, reload, func() { reloadDirectory(g.dir, g.logger) }) })
	if g.geoip != nil {
		wg.Go(func() { g.geoip.Watch(ctx, geoip.DefaultWatchInterval) })
	}
	if watchesPolicies(g.cfg.Policies) {
		wg.Go(func() { g.Policy.Watch(ctx, time.Second) })
	}
	wg.Go(func() { g.Server.Sessions().Watch(ctx) })
	wg.Go(func() {
		every(ctx, time.Minute, func() {
			if err := g.Signer.Refresh(ctx); err != nil {
				g.logger.Error("refresh signing keys", "error", err)
			}
		})
	})
	wg.Go(func() {
		every(ctx, 5*time.Minute, func() {
			if err := g.Store.Sweep(ctx, time.Now()); err != nil {
				g.logger.Error("sweep expired records", "error", err)
			}
		})
	})
	wg.Wait()
}

// Close releases what New opened, the last opened first.
func (g *Gateway) Close() {
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i]()
	}
	g.closers = nil
}
