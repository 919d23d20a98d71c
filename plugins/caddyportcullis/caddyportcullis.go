// Package caddyportcullis runs Portcullis inside Caddy. It registers two
// HTTP handler modules and their Caddyfile directives:
//
//   - http.handlers.portcullis (directive portcullis) serves the gateway
//     that a portcullis.yaml describes: the sign-in pages and API under
//     /.portcullis/, and each route's legacy app behind them, proxied by
//     the gateway with its identity headers and signed assertion. Caddy
//     terminates TLS and gets the certificates; the file's listen and tls
//     sections are not used.
//   - http.handlers.portcullis_admin (directive portcullis_admin) serves
//     the same gateway's admin API, /metrics, /healthz and /readyz, for a
//     site bound to a private address.
//
// Both name the configuration file; every handler that names the same file
// with the same content shares one gateway (one store, one session cache,
// one set of policies), and a Caddy reload that leaves the file as it was
// keeps that gateway running. A reload after the file changed builds a new
// gateway from it and stops the old one once Caddy no longer uses it; a
// file that does not load fails the reload, and Caddy keeps the running
// configuration.
//
// Caddy finds its modules through registration when the package is
// imported: build Caddy with it (xcaddy build --with
// github.com/portcullis/portcullis/plugins/caddyportcullis, or go build
// ./cmd/caddy-portcullis). Caddyfile.embedded.example shows a site.
package caddyportcullis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/plugins/compose"
)

// Caddy's modules register themselves when their package is loaded; a
// Caddy binary is assembled from the packages it imports.
func init() {
	caddy.RegisterModule(Handler{})
	caddy.RegisterModule(Admin{})
	httpcaddyfile.RegisterDirective("portcullis", directive(func() configured { return new(Handler) }))
	httpcaddyfile.RegisterDirective("portcullis_admin", directive(func() configured { return new(Admin) }))
	// The gateway answers every request it is given, as reverse_proxy
	// does; it goes where Caddy puts its other terminal handlers.
	httpcaddyfile.RegisterDirectiveOrder("portcullis", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterDirectiveOrder("portcullis_admin", httpcaddyfile.Before, "reverse_proxy")
}

// gateways are the running gateways by configuration file and content,
// shared by every handler that names them and kept across Caddy reloads
// while one does. Caddy's own modules keep their long-lived state (the
// reverse proxy's upstream hosts, listeners) in such pools.
var gateways = caddy.NewUsagePool()

// Handler is the http.handlers.portcullis module: it serves the gateway
// that Config describes.
type Handler struct {
	// Config is the path of the gateway's configuration file
	// (portcullis.yaml); relative paths in it are taken from its
	// directory.
	Config string `json:"config,omitempty"`

	shared
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.portcullis", New: func() caddy.Module { return new(Handler) }}
}

// Provision starts the gateway, or joins the one already running for the
// same file and content.
func (h *Handler) Provision(caddy.Context) error { return h.join(h.Config) }

// Cleanup lets go of the gateway; the last handler to let go stops it.
func (h *Handler) Cleanup() error { return h.leave() }

// ServeHTTP hands the request to the gateway, which answers it (a sign-in
// page, a redirect to one, or the route's upstream response); next is not
// called. A request that did not come over TLS is refused with a 403
// before the gateway sees it: passwords and session cookies never cross
// plain HTTP, and Caddy's automatic HTTPS redirects such requests before
// they get here unless the site was declared http://.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.TLS == nil {
		return caddyhttp.Error(http.StatusForbidden, errPlainHTTP)
	}
	h.run.gw.Handler().ServeHTTP(w, r)
	return nil
}

var errPlainHTTP = errors.New("portcullis: the gateway serves only over HTTPS; this request came over plain HTTP (serve the site with TLS)")

// UnmarshalCaddyfile reads the directive:
//
//	portcullis <config file>
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalPath(d, &h.Config)
}

// Admin is the http.handlers.portcullis_admin module: it serves the admin
// API, metrics and health checks of the gateway that Config describes.
type Admin struct {
	// Config is the path of the gateway's configuration file, as for
	// Handler; an Admin and a Handler naming the same file share the
	// gateway.
	Config string `json:"config,omitempty"`

	shared
}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.portcullis_admin", New: func() caddy.Module { return new(Admin) }}
}

// Provision starts the gateway, or joins the one already running.
func (a *Admin) Provision(caddy.Context) error { return a.join(a.Config) }

// Cleanup lets go of the gateway.
func (a *Admin) Cleanup() error { return a.leave() }

// ServeHTTP answers with the gateway's admin handler: the admin API (a
// bearer token from admin.tokens), /metrics, /healthz and /readyz. As the
// standalone admin listener, it serves only on a loopback address unless
// the file sets listen.admin_exposed: metrics and health ask no one who
// they are. A request that reached it on another address gets a 403.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if !a.run.adminExposed {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if ap, err := netip.ParseAddrPort(fmt.Sprint(local)); err != nil || !ap.Addr().Unmap().IsLoopback() {
			return caddyhttp.Error(http.StatusForbidden, fmt.Errorf("portcullis_admin: served on %v, not a loopback address: "+
				"bind its site to loopback, or set listen.admin_exposed: true in the gateway's file and keep others out with the network", local))
		}
	}
	a.run.gw.AdminHandler().ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile reads the directive:
//
//	portcullis_admin <config file>
func (a *Admin) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalPath(d, &a.Config)
}

// shared is a handler's hold on its gateway in the pool.
type shared struct {
	key string
	run *running
}

// join holds the gateway of the file at path, starting it if no handler
// holds it yet.
func (s *shared) join(path string) error {
	if err := validate(path); err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("portcullis: config: %w", err)
	}
	body, err := os.ReadFile(abs)
	if err != nil {
		return fmt.Errorf("portcullis: %w", err)
	}
	sum := sha256.Sum256(body)
	key := abs + "#" + hex.EncodeToString(sum[:])
	v, _, err := gateways.LoadOrNew(key, func() (caddy.Destructor, error) {
		return start(abs, caddy.Log())
	})
	if err != nil {
		return err
	}
	s.key, s.run = key, v.(*running)
	return nil
}

// leave lets go of the gateway.
func (s *shared) leave() error {
	if s.key == "" {
		return nil
	}
	_, err := gateways.Delete(s.key)
	s.key, s.run = "", nil
	return err
}

// running is a gateway and its background work.
type running struct {
	gw           *compose.Gateway
	adminExposed bool // listen.admin_exposed
	stop         context.CancelFunc
	done         chan struct{}
}

// start loads the configuration file at path and starts its gateway. It
// lives until the pool destructs it, longer than the Caddy configuration
// that first asked for it, so it has a context of its own.
func start(path string, zl *zap.Logger) (*running, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	// Caddy's default logger, named as Caddy names a module's: the
	// gateway outlives the configuration that started it, and with it
	// any log that configuration set up for its modules.
	logger := slog.New(zapslog.NewHandler(zl.Core(), zapslog.WithName("http.handlers.portcullis"),
		zapslog.AddStacktraceAt(slog.Level(127))))
	ctx, stop := context.WithCancel(context.Background())
	gw, err := compose.New(ctx, cfg, logger)
	if err != nil {
		stop()
		return nil, err
	}
	logger.Info("portcullis gateway started inside caddy; the file's listen and tls sections are not used",
		"config", path, "hosts", cfg.Hosts())
	r := &running{gw: gw, adminExposed: cfg.Listen.AdminExposed, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		gw.Run(ctx, nil)
	}()
	return r, nil
}

// Destruct stops the gateway's background work and closes it.
func (r *running) Destruct() error {
	r.stop()
	<-r.done
	r.gw.Close()
	return nil
}

func validate(path string) error {
	if path == "" {
		return fmt.Errorf("portcullis: no configuration file: name one, as in portcullis /etc/portcullis/portcullis.yaml")
	}
	return nil
}

// configured is a module the directive fills in.
type configured interface {
	caddyhttp.MiddlewareHandler
	caddyfile.Unmarshaler
}

// directive reads a directive into the module newModule returns, as a
// route. The directive may start with a named matcher (@name) and no other:
// a path matcher would be read as the configuration file's path, which Caddy
// does for handler directives in general.
func directive(newModule func() configured) httpcaddyfile.UnmarshalFunc {
	return func(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
		var matchers caddy.ModuleMap
		h.Next()
		if h.NextArg() && strings.HasPrefix(h.Val(), "@") {
			h.Reset()
			h.Next()
			var err error
			if matchers, err = h.ExtractMatcherSet(); err != nil {
				return nil, err
			}
		}
		h.Reset()
		h.Next()
		m := newModule()
		if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
			return nil, err
		}
		return h.NewRoute(matchers, m), nil
	}
}

// unmarshalPath reads the directive's one argument, the configuration
// file. The helper has consumed the directive's name already.
func unmarshalPath(d *caddyfile.Dispenser, path *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s needs the path of portcullis.yaml: %s /etc/portcullis/portcullis.yaml", name, name)
	}
	*path = d.Val()
	if d.NextArg() {
		return d.Errf("%s takes one argument, the path of portcullis.yaml; %q is one too many", name, d.Val())
	}
	if d.NextBlock(0) {
		return d.Errf("%s takes no block: everything else is in portcullis.yaml", name)
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
	_ caddy.Provisioner           = (*Admin)(nil)
	_ caddy.CleanerUpper          = (*Admin)(nil)
	_ caddyhttp.MiddlewareHandler = (*Admin)(nil)
	_ caddyfile.Unmarshaler       = (*Admin)(nil)
	_ caddy.Destructor            = (*running)(nil)
)
