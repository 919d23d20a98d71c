// Command serve measures Portcullis as operators run it: the built
// `portcullis serve` binary with a real configuration (internal TLS, the
// shipped policies with the decision log on, GeoIP databases, metrics),
// in front of a separate upstream process, against a bare
// httputil.ReverseProxy with pooled buffers, Debian's Caddy reverse_proxy
// and, when given, oauth2-proxy — each loaded by wrk, a separate process,
// over TLS with keep-alive connections, in interleaved rounds.
//
//	go run ./bench/serve                       # about 5 minutes
//	go run ./bench/serve -rounds 3 -duration 8s -oauth2-proxy $(go env GOPATH)/bin/oauth2-proxy
//	go run ./bench/serve -store postgres-redis -replicas 2  # two gateways on PostgreSQL and Redis behind bench/front
//
// It then measures sign-ins: the argon2id ceiling of the machine, sign-in
// throughput, and the proxied requests' throughput and p99 during a burst
// of concurrent sign-ins. docs/performance.md describes the method and
// holds its output from the reference machine.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "serve bench:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	conns       int
	threads     int
	burst       int
	loginTime   time.Duration
	oauth2Proxy string
	noCaddy     bool
	keep        bool
	asJSON      bool
	nice        int
	profile     string
	hashers     int
	store       string
	postgres    string
	redis       string
	replicas    int
	caddyModule bool
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; each loads every proxy once, in a rotating order")
	fs.DurationVar(&o.duration, "duration", 8*time.Second, "measured time per proxy per round (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measured run")
	fs.IntVar(&o.conns, "c", 64, "wrk connections (keep-alive)")
	fs.IntVar(&o.threads, "t", 2, "wrk threads")
	fs.IntVar(&o.burst, "burst", 50, "concurrent sign-ins in the burst runs (0 skips the sign-in measurements)")
	fs.DurationVar(&o.loginTime, "login-duration", 8*time.Second, "length of the sign-in throughput and ceiling measurements")
	fs.StringVar(&o.oauth2Proxy, "oauth2-proxy", "", "path of an oauth2-proxy binary to compare too (go install github.com/oauth2-proxy/oauth2-proxy/v7@latest)")
	fs.BoolVar(&o.noCaddy, "no-caddy", false, "leave out Caddy even when it is installed")
	fs.BoolVar(&o.caddyModule, "caddy-module", false, "also measure the gateway inside Caddy (cmd/caddy-portcullis with the portcullis directive, on the same store)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (logs, configuration, decision log)")
	fs.BoolVar(&o.asJSON, "json", false, "print the results as JSON")
	fs.IntVar(&o.nice, "nice", -1, "set the gateway's password.nice (-1 leaves the default)")
	fs.IntVar(&o.hashers, "max-concurrent", 0, "set the gateway's password.max_concurrent (0 leaves the default)")
	fs.StringVar(&o.profile, "cpuprofile", "", "only load the gateway for -duration and write its CPU profile (listen.pprof) to this file")
	fs.StringVar(&o.store, "store", storeSQLite, "the gateway's store: sqlite (a file in its data directory) or postgres-redis (store.driver postgres with store.redis)")
	// The defaults are resolved after parsing, so that help never shows a
	// password the environment's DSN or URL may hold.
	fs.StringVar(&o.postgres, "postgres", "", "with -store postgres-redis, the DSN of a database the run may create a schema in (default $"+postgresEnv+", else "+defaultPostgres+")")
	fs.StringVar(&o.redis, "redis", "", "with -store postgres-redis, the Redis server's URL (default $"+redisEnv+", else "+defaultRedis+")")
	fs.IntVar(&o.replicas, "replicas", 1, "gateway processes sharing the store behind a round-robin TCP front (more than 1 needs -store postgres-redis)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.rounds < 1 || o.duration < time.Second || o.conns < 1 || o.threads < 1 || o.burst < 0 || o.warmup < 0 {
		return errors.New("rounds, connections and threads must be positive, duration at least 1s")
	}
	if o.postgres == "" {
		o.postgres = envOr(postgresEnv, defaultPostgres)
	}
	if o.redis == "" {
		o.redis = envOr(redisEnv, defaultRedis)
	}
	if err := checkStore(o); err != nil {
		return err
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk is not installed (apt-get install wrk)")
	}
	if o.caddyModule && o.replicas > 1 {
		return errors.New("-caddy-module measures one gateway: leave out -replicas")
	}
	targets := 2 + btoi(!o.noCaddy) + btoi(o.oauth2Proxy != "") + btoi(o.caddyModule)
	limit := time.Duration(o.rounds*targets+4*o.rounds)*(o.duration+o.warmup+5*time.Second) + 3*o.loginTime + 5*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	b, err := setUp(ctx, o, stderr)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		return err
	}
	if o.profile != "" {
		return b.profileGateway(ctx, o)
	}
	rep, err := b.measure(ctx, o, stderr)
	if err != nil {
		return err
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(stdout)
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// target is one proxy under load.
type target struct {
	Name    string `json:"name"`
	url     string
	headers []string
	// procs are the proxy's processes, whose CPU a run sums: one, or the
	// gateway's replicas; front is the load balancer before them, if any.
	procs      []*proc
	front      *proc
	identified bool // the upstream must see the gateway's identity on every request
}

// cpu returns the CPU time the proxy's processes have used so far.
func (t *target) cpu() (time.Duration, error) { return sumOver(t.procs, (*proc).cpu) }

// rss returns the proxy's processes' resident memory in bytes.
func (t *target) rss() (int64, error) { return sumOver(t.procs, (*proc).rss) }

// frontCPU returns the CPU time of the front before the proxy, 0 without
// one.
func (t *target) frontCPU() (time.Duration, error) {
	if t.front == nil {
		return 0, nil
	}
	return t.front.cpu()
}

// sumOver adds up one measure of every process.
func sumOver[T time.Duration | int64](procs []*proc, measure func(*proc) (T, error)) (T, error) {
	var total T
	for _, p := range procs {
		v, err := measure(p)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, nil
}

// harness is everything the benchmark started.
type harness struct {
	dir      string
	keep     bool
	upstream *proc
	upAddr   string
	targets  []*target
	gateway  *target
	client   *http.Client // trusts the gateway's CA
	base     string       // https://localhost:port of the gateway
	device   string       // the registered device's cookie value
	admin    string       // the (first) gateway's admin listener
	procs    []*proc
	front    *proc        // the TCP front of several replicas
	shared   *sharedStore // the PostgreSQL schema and Redis prefix, with postgres-redis
	log      io.Writer
}

func (b *harness) close() {
	for _, p := range slices.Backward(b.procs) {
		p.stop()
	}
	if b.shared != nil {
		if err := b.shared.close(); err != nil {
			fmt.Fprintln(b.log, "serve bench: cleaning up the store:", err)
		}
	}
	if !b.keep {
		os.RemoveAll(b.dir)
	}
}

func setUp(ctx context.Context, o options, log io.Writer) (*harness, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "portcullis-serve-bench-")
	if err != nil {
		return nil, err
	}
	b := &harness{dir: dir, keep: o.keep, log: log}
	if o.keep {
		fmt.Fprintln(log, "working directory:", dir)
	}
	pkgs := []string{"./cmd/portcullis", "./bench/upstream", "./bench/bareproxy"}
	if o.replicas > 1 {
		pkgs = append(pkgs, "./bench/front")
	}
	if o.caddyModule {
		pkgs = append(pkgs, "./cmd/caddy-portcullis")
	}
	names := make([]string, len(pkgs))
	for i, p := range pkgs {
		names[i] = filepath.Base(p)
	}
	fmt.Fprintf(log, "building %s ...\n", strings.Join(names, ", "))
	if err := build(ctx, root, dir, pkgs); err != nil {
		return b, err
	}
	bin := func(name string) string { return filepath.Join(dir, "bin", name) }

	up, upAddr, err := start(ctx, dir, "upstream", true, bin("upstream"), "-listen", "127.0.0.1:0")
	if err != nil {
		return b, err
	}
	b.procs, b.upstream, b.upAddr = append(b.procs, up), up, upAddr

	// The gateway, configured and provisioned as an operator would; with
	// several replicas, gwAddr is their front's.
	gws, gwAddr, err := b.startGateways(ctx, o, root, bin, upAddr)
	if err != nil {
		return b, err
	}
	if b.client, err = gatewayClient(filepath.Join(dir, "data", "ca.pem")); err != nil {
		return b, err
	}
	b.base = "https://" + host + ":" + portOf(gwAddr)
	sess, device, err := signIn(b.client, b.base, filepath.Join(dir, "data", "outbox.jsonl"))
	if err != nil {
		return b, fmt.Errorf("sign in on the gateway: %w", err)
	}
	b.device = device
	b.gateway = &target{Name: "portcullis", url: b.base + "/", procs: gws, front: b.front, identified: true,
		headers: []string{"Cookie: " + sessionCookie + "=" + sess}}

	cert, key, err := writeCert(dir)
	if err != nil {
		return b, err
	}
	bare, bareAddr, err := start(ctx, dir, "bareproxy", true, bin("bareproxy"),
		"-listen", "127.0.0.1:0", "-upstream", "http://"+upAddr, "-cert", cert, "-key", key, "-data", filepath.Join(dir, "bare"))
	if err != nil {
		return b, err
	}
	b.procs = append(b.procs, bare)
	b.targets = []*target{{Name: "bare", url: "https://" + host + ":" + portOf(bareAddr) + "/", procs: []*proc{bare}}, b.gateway}

	if _, err := exec.LookPath("caddy"); err == nil && !o.noCaddy {
		addr, err := freePort()
		if err != nil {
			return b, err
		}
		cf := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(cf, []byte(caddyfile(addr, upAddr, cert, key)), 0o600); err != nil {
			return b, err
		}
		c, _, err := start(ctx, dir, "caddy", false, "caddy", "run", "--config", cf, "--adapter", "caddyfile")
		if err != nil {
			return b, err
		}
		b.procs = append(b.procs, c)
		t := &target{Name: "caddy", url: "https://" + host + ":" + portOf(addr) + "/", procs: []*proc{c}}
		if err := waitTarget(ctx, t); err != nil {
			return b, err
		}
		b.targets = append(b.targets, t)
	} else if !o.noCaddy {
		fmt.Fprintln(log, "caddy is not installed (apt-get install caddy): leaving it out")
	}

	if o.caddyModule {
		t, err := b.startEmbedded(ctx, bin("caddy-portcullis"), cert, key)
		if err != nil {
			return b, err
		}
		b.targets = append(b.targets, t)
	}

	if o.oauth2Proxy != "" {
		addr, err1 := freePort()
		httpAddr, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return b, err
		}
		args, err := oauth2ProxyArgs(dir, addr, httpAddr, upAddr, cert, key)
		if err != nil {
			return b, err
		}
		p, _, err := start(ctx, dir, "oauth2-proxy", false, o.oauth2Proxy, args...)
		if err != nil {
			return b, err
		}
		b.procs = append(b.procs, p)
		base := "https://" + host + ":" + portOf(addr)
		if err := waitHTTP(ctx, insecureClient(), base+"/ping", p); err != nil {
			return b, err
		}
		cookie, err := oauth2ProxySignIn(insecureClient(), base)
		if err != nil {
			return b, err
		}
		b.targets = append(b.targets, &target{Name: "oauth2-proxy", url: base + "/", procs: []*proc{p}, headers: []string{"Cookie: " + cookie}})
	}
	return b, nil
}

// waitTarget waits until a proxy answers with the upstream's body.
func waitTarget(ctx context.Context, t *target) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check(t)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %w: %s", t.Name, err, t.procs[0].tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// insecureClient talks to the proxies with the benchmark's self-signed
// certificate, as wrk does.
func insecureClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.InsecureSkipVerify = true
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// check makes the request wrk will make and requires the upstream's
// 200 and body: a redirect to a sign-in page is never measured.
func check(t *target) error {
	req, err := http.NewRequest(http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	for _, h := range t.headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := insecureClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || len(body) != 1024 || body[0] != 'a' || body[1023] != '\n' {
		return fmt.Errorf("%s answered %d with %d bytes, want 200 and the upstream's 1 KiB", t.url, resp.StatusCode, len(body))
	}
	return nil
}

// upstreamCounts reads the upstream's request counters.
func (b *harness) upstreamCounts() (total, identified int64, err error) {
	resp, err := http.Get("http://" + b.upAddr + "/.bench/count")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(raw))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("upstream count %q", raw)
	}
	total, err1 := strconv.ParseInt(f[0], 10, 64)
	identified, err2 := strconv.ParseInt(f[1], 10, 64)
	return total, identified, errors.Join(err1, err2)
}

func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s", runtime.NumCPU(), model, runtime.Version())
}
