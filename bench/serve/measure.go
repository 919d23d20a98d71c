package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/portcullis/portcullis/bench"
	"github.com/portcullis/portcullis/gateway/credential"
)

// runResult is one measured wrk run against one proxy.
type runResult struct {
	Round  int    `json:"round"`
	Target string `json:"target"`
	Burst  bool   `json:"burst,omitempty"`
	wrkResult
	// CPUPerRequest is the proxy process's CPU time over the run divided
	// by the requests; UpstreamCPUPerRequest the upstream's.
	CPUPerRequest         time.Duration `json:"cpu_per_request_ns"`
	UpstreamCPUPerRequest time.Duration `json:"upstream_cpu_per_request_ns"`
	// FrontCPUPerRequest is the TCP front's, before several replicas; the
	// replicas' CPU, summed, is CPUPerRequest.
	FrontCPUPerRequest time.Duration `json:"front_cpu_per_request_ns,omitempty"`
	// NewConnections is how many TCP connections the machine opened
	// during the run: wrk's own 64 and any the proxy opened upstream.
	NewConnections int64  `json:"new_tcp_connections"`
	LoadAvg        string `json:"loadavg_before"`
	// Sign-ins made during a burst run, and those answered 503 because
	// every hashing slot was busy past the queue's deadline.
	Logins     int64 `json:"logins,omitempty"`
	LoginsBusy int64 `json:"logins_busy,omitempty"`
}

// report is the whole benchmark's outcome.
type report struct {
	Machine string `json:"machine"`
	// Store is the gateway's (sqlite or postgres-redis) and Replicas how
	// many gateway processes shared it behind the front.
	Store    string        `json:"store"`
	Replicas int           `json:"replicas"`
	Conns    int           `json:"connections"`
	Threads  int           `json:"wrk_threads"`
	Duration time.Duration `json:"duration_ns"`
	Runs     []runResult   `json:"runs"`
	Ratios   []ratioRow    `json:"ratios"`
	Burst    []burstRow    `json:"burst,omitempty"`
	Logins   *loginResult  `json:"logins,omitempty"`
	// GatewayRSS is the gateway's resident memory at the end, summed over
	// the replicas.
	GatewayRSS int64 `json:"gateway_rss_bytes"`
}

func (b *harness) measure(ctx context.Context, o options, log io.Writer) (*report, error) {
	rep := &report{Machine: machine(), Store: o.store, Replicas: o.replicas, Conns: o.conns, Threads: o.threads, Duration: o.duration}
	for round := range o.rounds {
		order := slices.Clone(b.targets)
		// Rotate, so that no proxy always runs first or after the same one.
		k := round % len(order)
		order = append(order[k:], order[:k]...)
		for _, t := range order {
			res, err := b.measureOne(ctx, o, t, round, 0)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "round %d %-12s %8.0f req/s  p50 %6s  p99 %6s  cpu/req %5.1fµs  load %s\n", round+1, t.Name,
				res.RPS, ms(res.P50), ms(res.P99), us(res.CPUPerRequest), res.LoadAvg)
			rep.Runs = append(rep.Runs, res)
		}
	}
	rep.Ratios = ratios(rep.Runs, b.targets)

	if o.burst > 0 {
		// Pairs of gateway runs without and with the burst, alternating
		// which goes first.
		pairs := min(o.rounds, 3)
		for round := range pairs {
			var row burstRow
			for i := range 2 {
				burst := (i+round)%2 == 1
				n := 0
				if burst {
					n = o.burst
				}
				res, err := b.measureOne(ctx, o, b.gateway, round, n)
				if err != nil {
					return nil, err
				}
				fmt.Fprintf(log, "burst pair %d %-8v %8.0f req/s  p99 %6s  sign-ins %d (503: %d)  load %s\n", round+1, burst,
					res.RPS, ms(res.P99), res.Logins, res.LoginsBusy, res.LoadAvg)
				rep.Runs = append(rep.Runs, res)
				if burst {
					row.With = res
				} else {
					row.Without = res
				}
			}
			rep.Burst = append(rep.Burst, row)
		}
		lr, err := b.measureLogins(ctx, o)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "sign-ins %.1f/s (503: %d), argon2id ceiling %.1f hashes/s\n", lr.PerSecond, lr.Busy, lr.CeilingPerSecond)
		rep.Logins = lr
	}
	rep.GatewayRSS, _ = b.gateway.rss()
	return rep, nil
}

// measureOne checks the target, warms it up and measures one wrk run,
// with burst concurrent sign-ins going on when burst > 0.
func (b *harness) measureOne(ctx context.Context, o options, t *target, round, burst int) (runResult, error) {
	res := runResult{Round: round + 1, Target: t.Name, Burst: burst > 0}
	if err := check(t); err != nil {
		return res, err
	}
	if o.warmup >= time.Second {
		if _, out, err := runWrk(ctx, t.url, o.warmup, o.threads, o.conns, t.headers); err != nil {
			return res, fmt.Errorf("%s warm-up: %w\n%s", t.Name, err, out)
		}
	}
	var logins loginCounts
	stopBurst := func() {}
	if burst > 0 {
		bctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() { b.signInLoop(bctx, i, &logins) })
		}
		stopBurst = func() { cancel(); wg.Wait() }
		// Let the hashing queue fill before measuring.
		time.Sleep(time.Second)
	}
	res.LoadAvg = bench.LoadAvg()
	total0, ident0, err := b.upstreamCounts()
	if err != nil {
		stopBurst()
		return res, err
	}
	cpu0, err1 := t.cpu()
	ucpu0, err2 := b.upstream.cpu()
	conns0, err3 := tcpActiveOpens()
	fcpu0, err7 := t.frontCPU()
	logins0, busy0 := logins.ok.Load(), logins.busy.Load()
	w, out, err := runWrk(ctx, t.url, o.duration, o.threads, o.conns, t.headers)
	cpu1, err4 := t.cpu()
	ucpu1, err5 := b.upstream.cpu()
	conns1, err6 := tcpActiveOpens()
	fcpu1, err8 := t.frontCPU()
	res.Logins, res.LoginsBusy = logins.ok.Load()-logins0, logins.busy.Load()-busy0
	stopBurst()
	if err != nil {
		return res, fmt.Errorf("%s: %w", t.Name, err)
	}
	if err := firstError(err1, err2, err3, err4, err5, err6, err7, err8, logins.err()); err != nil {
		return res, err
	}
	total1, ident1, err := b.upstreamCounts()
	if err != nil {
		return res, err
	}
	res.wrkResult = w
	if w.Errors > 0 {
		return res, fmt.Errorf("%s: %d requests failed or were not answered 2xx/3xx:\n%s", t.Name, w.Errors, out)
	}
	// Every request wrk counted reached the upstream, and through the
	// gateway carried the user's identity (none was a sign-in redirect).
	if total1-total0 < w.Requests {
		return res, fmt.Errorf("%s: wrk counted %d answers but the upstream served %d", t.Name, w.Requests, total1-total0)
	}
	if t.identified && ident1-ident0 < w.Requests {
		return res, fmt.Errorf("%s: wrk counted %d answers but only %d reached the upstream with an identity", t.Name, w.Requests, ident1-ident0)
	}
	res.CPUPerRequest = (cpu1 - cpu0) / time.Duration(w.Requests)
	res.UpstreamCPUPerRequest = (ucpu1 - ucpu0) / time.Duration(w.Requests)
	res.FrontCPUPerRequest = (fcpu1 - fcpu0) / time.Duration(w.Requests)
	res.NewConnections = conns1 - conns0
	return res, nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// loginCounts are the outcomes of concurrent sign-ins.
type loginCounts struct {
	ok, busy  atomic.Int64
	mu        sync.Mutex
	failure   error
	latencies []time.Duration // of successful sign-ins, when kept
	keep      bool
}

func (c *loginCounts) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure == nil {
		c.failure = err
	}
}

func (c *loginCounts) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failure
}

// signInLoop signs the customer in again and again from the registered
// device (a right password: the full sign-in, which opens a session) until
// ctx ends. A 503 is the hashing queue's deadline, counted as busy.
// Worker i connects from its own loopback address, 127.0.1.(i+1): the
// people of a burst sign in from many addresses, and the gateway holds
// each address's attempts in flight to its failure limit.
func (b *harness) signInLoop(ctx context.Context, i int, c *loginCounts) {
	tr := b.client.Transport.(*http.Transport).Clone()
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 1+byte(i/250), 1+byte(i%250))}
	tr.DialContext = (&net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}).DialContext
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	creds := map[string]string{"username": username, "password": password}
	for ctx.Err() == nil {
		t0 := time.Now()
		status, m, err := postJSON(client, b.base+"/.portcullis/api/v1/login", creds, "Cookie", deviceCookie+"="+b.device)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			c.fail(fmt.Errorf("sign-in during the burst: %w", err))
			return
		case status == http.StatusOK && m["status"] == "authenticated":
			c.ok.Add(1)
			if c.keep {
				c.mu.Lock()
				c.latencies = append(c.latencies, time.Since(t0))
				c.mu.Unlock()
			}
		case status == http.StatusServiceUnavailable:
			c.busy.Add(1)
		default:
			c.fail(fmt.Errorf("sign-in during the burst answered %d %v", status, m))
			return
		}
	}
}

// loginResult compares sign-in throughput with what argon2id allows.
type loginResult struct {
	Concurrency int     `json:"concurrency"`
	PerSecond   float64 `json:"per_second"`
	Busy        int64   `json:"busy"`
	// P50 and P99 are the successful sign-ins' latencies.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	// CeilingPerSecond is argon2id hashes per second at the gateway's
	// parameters with every core hashing, measured in this process while
	// the gateway is idle, before and after the sign-ins (the mean).
	CeilingPerSecond float64 `json:"ceiling_per_second"`
	Ratio            float64 `json:"ratio"`
}

func (b *harness) measureLogins(ctx context.Context, o options) (*loginResult, error) {
	before := hashCeiling(o.loginTime / 2)
	c := &loginCounts{keep: true}
	lctx, cancel := context.WithTimeout(ctx, o.loginTime)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range o.burst {
		wg.Go(func() { b.signInLoop(lctx, i, c) })
	}
	wg.Wait()
	elapsed := time.Since(t0)
	cancel()
	if err := c.err(); err != nil {
		return nil, err
	}
	after := hashCeiling(o.loginTime / 2)
	lr := &loginResult{Concurrency: o.burst, PerSecond: float64(c.ok.Load()) / elapsed.Seconds(), Busy: c.busy.Load(),
		CeilingPerSecond: (before + after) / 2}
	lr.Ratio = lr.PerSecond / lr.CeilingPerSecond
	slices.Sort(c.latencies)
	if n := len(c.latencies); n > 0 {
		lr.P50, lr.P99 = c.latencies[(n-1)/2], c.latencies[(n*99+99)/100-1]
	}
	return lr, nil
}

// hashCeiling runs argon2id at the gateway's default parameters on every
// core for d and returns hashes per second.
func hashCeiling(d time.Duration) float64 {
	p := credential.DefaultParams()
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range runtime.NumCPU() {
		wg.Go(func() {
			salt := make([]byte, 16)
			for time.Now().Before(deadline) {
				argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, 32)
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(t0).Seconds()
}

// profileGateway loads the gateway with wrk for o.duration while taking a
// CPU profile of it through the admin listener's profiler.
func (b *harness) profileGateway(ctx context.Context, o options) error {
	t := b.gateway
	if err := check(t); err != nil {
		return err
	}
	secs := int(o.duration.Seconds())
	type answer struct {
		body []byte
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.admin, secs))
		if err != nil {
			got <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("profile: %d %s", resp.StatusCode, body)
		}
		got <- answer{body, err}
	}()
	if _, out, err := runWrk(ctx, t.url, o.duration+time.Second, o.threads, o.conns, t.headers); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	a := <-got
	if a.err != nil {
		return a.err
	}
	return os.WriteFile(o.profile, a.body, 0o644)
}
