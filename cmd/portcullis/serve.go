package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/certs"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/plugins/compose"
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
	_, closeDir, err := compose.OpenDirectory(cfg.Directory, slog.New(slog.DiscardHandler))
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
	gw, err := compose.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer gw.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	tlsCfg := compose.CertsConfig(cfg)
	tlsCfg.Storage = certStorage(gw.Store)
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
		{Handler: gw.Handler(), TLSConfig: mgr.TLSConfig(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)},
		{Handler: gw.AdminHandler(), ReadHeaderTimeout: 10 * time.Second},
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
	g.Go(func() error {
		gw.Run(gctx, hup)
		return nil
	})
	if ready != nil {
		if err := ready(&app{store: gw.Store, server: gw.Server, policy: gw.Policy, signer: gw.Signer, phones: gw.Phones, rootPEM: mgr.RootPEM()}); err != nil {
			return err
		}
	}
	return g.Wait()
}

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
