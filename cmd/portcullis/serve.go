package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/certs"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/admin"
	"github.com/portcullis/portcullis/gateway/notify"
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

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := parseConfigFlag(fs, args)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, logger, nil)
}

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := parseConfigFlag(fs, args)
	if err != nil {
		return err
	}
	// What only the plugins check: the customer file's records.
	_, closeDir, err := openDirectory(cfg.Directory, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Lookup("config").Value, err)
	}
	closeDir()
	fmt.Fprintf(stdout, "%s: ok\n", fs.Lookup("config").Value)
	return nil
}

// parseConfigFlag parses args with a --config flag added to fs and loads
// the configuration it names.
func parseConfigFlag(fs *flag.FlagSet, args []string) (*config.File, error) {
	path := fs.String("config", "portcullis.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return config.Load(*path)
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// app is a running gateway's parts, for the demo to add to.
type app struct {
	store   *combined.Store
	server  *gateway.Server
	policy  *policies.Engine
	signer  *assertion.Signer
	phones  *phone.Classifier
	rootPEM []byte
}

// serve runs the gateway until ctx ends. ready, if set, is called once the
// listeners are open.
func serve(ctx context.Context, cfg *config.File, logger *slog.Logger, ready func(*app) error) error {
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	signer, err := assertion.NewSigner(ctx, db, assertion.SignerConfig{Issuer: cfg.Issuer, TTL: cfg.Identity.AssertionTTL})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	engine, dlog, err := newPolicyEngine(ctx, cfg.Policies, logger, newPolicyMetrics(reg))
	if err != nil {
		return err
	}
	defer dlog.Close()
	if err := applyShadow(ctx, engine, cfg.Policies); err != nil {
		return err
	}
	defer engine.SetShadow(context.WithoutCancel(ctx), nil) //nolint:errcheck // turning off cannot fail
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	dir, closeDir, err := openDirectory(cfg.Directory, logger)
	if err != nil {
		return err
	}
	defer closeDir()
	go runShadow(ctx, engine, cfg, logger, hup, func() { reloadDirectory(dir, logger) })
	codeKey, err := loadCodeKey(cfg.CodeKeyPath())
	if err != nil {
		return err
	}
	deps := gateway.Deps{Users: db, Hits: db, Sessions: db, Records: db, Devices: db, Factors: db,
		CodeKey: codeKey, Signer: signer, Policy: engine, Directory: dir, Invalidator: invalidator(db), Logger: logger}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		shadowMetrics(engine), decisionLogDrops(dlog))
	if cfg.GeoIP.AnonymousIP != "" {
		reader, err := geoip.Open(geoip.Config{AnonymousIPPath: cfg.GeoIP.AnonymousIP, CountryPath: cfg.GeoIP.Country, Logger: logger})
		if err != nil {
			return err
		}
		defer reader.Close()
		go reader.Watch(ctx, geoip.DefaultWatchInterval)
		deps.Signals = reader
		reg.MustRegister(geoipReloads(reader))
	} else {
		logger.Warn("no anonymous-ip database: every address is unchecked and the policies decide")
	}
	phones, err := newPhones(cfg.Phone, logger)
	if err != nil {
		return err
	}
	deps.Phones = phones
	sender, err := newSender(cfg, logger)
	if err != nil {
		return err
	}
	deps.Sender = newCountingSender(sender, reg)
	deps.UpstreamObserver = upstreamMetrics(reg)
	if watchesPolicies(cfg.Policies) {
		go engine.Watch(ctx, time.Second)
	}
	gcfg := cfg.Gateway()
	if gcfg.Theme, err = cfg.Theme(); err != nil {
		return err
	}
	srv, err := gateway.New(gcfg, deps)
	if err != nil {
		return err
	}
	defer srv.Close()
	logger.Info("password hashing", "max_concurrent", gcfg.Password.MaxConcurrent, "nice", gcfg.Password.Nice)
	tlsCfg := certsConfig(cfg)
	tlsCfg.Storage = certStorage(db)
	if cfg.TLS.ACME.CARoot != "" {
		pem, err := os.ReadFile(cfg.TLS.ACME.CARoot)
		if err != nil {
			return fmt.Errorf("tls.acme.ca_root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls.acme.ca_root: no certificate in %s", cfg.TLS.ACME.CARoot)
		}
		tlsCfg.ACME.TrustedRoots = pool
	}
	mgr, err := certs.New(ctx, tlsCfg, logger)
	if err != nil {
		return err
	}
	defer mgr.Close()

	adminAPI, err := newAdminAPI(cfg, db, srv, signer, phones, engine, codeKey, logger)
	if err != nil {
		return err
	}
	adminMux := http.NewServeMux()
	adminMux.Handle(admin.Prefix, adminAPI)
	adminMux.Handle("/", adminHandler(reg, db, cfg.Listen.Pprof))

	handler := instrument(reg, srv)

	httpsLn, err := net.Listen("tcp", cfg.Listen.HTTPS)
	if err != nil {
		return fmt.Errorf("listen https: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.Listen.Admin)
	if err != nil {
		httpsLn.Close()
		return fmt.Errorf("listen admin: %w", err)
	}
	servers := []*http.Server{
		{Handler: handler, TLSConfig: mgr.TLSConfig(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)},
		{Handler: adminMux, ReadHeaderTimeout: 10 * time.Second},
	}
	lns := []net.Listener{httpsLn, adminLn}
	if cfg.Listen.HTTP != "" {
		ln, err := net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			httpsLn.Close()
			adminLn.Close()
			return fmt.Errorf("listen http: %w", err)
		}
		_, httpsPort, _ := net.SplitHostPort(httpsLn.Addr().String())
		servers = append(servers, &http.Server{Handler: mgr.HTTPChallengeHandler(redirectToHTTPS(httpsPort, cfg.Hosts())), ReadHeaderTimeout: 10 * time.Second})
		lns = append(lns, ln)
	}
	logger.Info("portcullis listening", "https", httpsLn.Addr().String(), "admin", adminLn.Addr().String(), "tls_mode", cfg.TLS.Mode)

	g, gctx := errgroup.WithContext(ctx)
	for i, s := range servers {
		ln := lns[i]
		g.Go(func() error {
			var err error
			if i == 0 {
				err = s.ServeTLS(ln, "", "")
			} else {
				err = s.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(shutdownCtx)
		}
		return nil
	})
	// Drop the sessions other replicas end from this one's cache.
	g.Go(func() error {
		srv.Sessions().Watch(gctx)
		return nil
	})
	// Reload signing keys so a rotation made elsewhere is picked up, and
	// drop expired sessions, grants and counters.
	g.Go(func() error {
		every(gctx, time.Minute, func() {
			if err := signer.Refresh(gctx); err != nil {
				logger.Error("refresh signing keys", "error", err)
			}
		})
		return nil
	})
	g.Go(func() error {
		every(gctx, 5*time.Minute, func() {
			if err := db.Sweep(gctx, time.Now()); err != nil {
				logger.Error("sweep expired records", "error", err)
			}
		})
		return nil
	})
	if ready != nil {
		if err := ready(&app{store: db, server: srv, policy: engine, signer: signer, phones: phones, rootPEM: mgr.RootPEM()}); err != nil {
			return err
		}
	}
	return g.Wait()
}

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

// newPhones builds the phone classifier: libphonenumber, and the carrier
// lookup when one is configured.
func newPhones(c config.Phone, logger *slog.Logger) (*phone.Classifier, error) {
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

// certsConfig is the TLS part of cfg.
func certsConfig(cfg *config.File) certs.Config {
	return certs.Config{Mode: cfg.TLS.Mode, DataDir: cfg.DataDir, Hosts: cfg.Hosts(),
		ACME:  certs.ACMEConfig{CA: cfg.TLS.ACME.CA, Email: cfg.TLS.ACME.Email, OnDemand: cfg.TLS.ACME.OnDemand, AskURL: cfg.TLS.ACME.Ask},
		Files: certs.FilesConfig{Cert: cfg.TLS.Files.Cert, Key: cfg.TLS.Files.Key}}
}

// openStore creates data_dir (mode 0700) if it is missing, checks the
// secret files' permissions and opens the store (openBackends). serve, the
// demo and the admin commands all open the store through it.
func openStore(ctx context.Context, cfg *config.File, logger *slog.Logger) (*combined.Store, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := checkSecretFiles(cfg, logger); err != nil {
		return nil, err
	}
	return openBackends(ctx, cfg, logger)
}

// secretFiles are the files of cfg that hold secrets: the SQLite store
// (signing keys, password hashes) with its -wal and -shm, or the files of
// the PostgreSQL DSN and the Redis URL (they may hold passwords), the code
// key, the private keys, the carrier lookup's and the delivery plugins'
// secrets, the admin API's tokens, and outbox files (they hold security
// codes).
func secretFiles(cfg *config.File) []string {
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
	files = append(append(files, cfg.CodeKeyPath()), certs.KeyFiles(certsConfig(cfg))...)
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
	for _, p := range secretFiles(cfg) {
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

// newPolicyEngine loads the policies, with the decision log file when one
// is configured (else the log is nil, and closing it does nothing) and obs,
// if not nil, told of every decision.
func newPolicyEngine(ctx context.Context, c config.Policies, logger *slog.Logger, obs policies.Observer) (*policies.Engine, *bufferedLog, error) {
	pc, err := policySource(c)
	if err != nil {
		return nil, nil, err
	}
	pc.Logger, pc.Observer = logger, obs
	var dlog *bufferedLog
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
func decisionLogDrops(dlog *bufferedLog) prometheus.Collector {
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

// redirectToHTTPS sends plain-HTTP requests for the gateway's hosts to
// HTTPS; any other Host gets 404 rather than a redirect to wherever it names.
func redirectToHTTPS(port string, hosts []string) http.Handler {
	known := map[string]bool{}
	for _, h := range hosts {
		known[h] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		host = strings.ToLower(host)
		if !known[host] {
			http.NotFound(w, r)
			return
		}
		if port != "443" {
			host = net.JoinHostPort(host, port)
		}
		w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
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
