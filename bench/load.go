package bench

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LoadConfig is one load run: Concurrency workers, each on its own
// keep-alive connection, sending the next request as soon as the last
// answer is read (a closed loop).
type LoadConfig struct {
	Concurrency int
	// Warmup is run first and not measured.
	Warmup time.Duration
	// Duration is how long to measure.
	Duration time.Duration
	// Requests, when positive, replaces Warmup and Duration: the run
	// measures exactly this many requests, spread over the workers.
	Requests int
}

func (c LoadConfig) validate() error {
	if c.Concurrency < 1 {
		return fmt.Errorf("bench: concurrency %d must be at least 1", c.Concurrency)
	}
	if c.Requests <= 0 && c.Duration <= 0 {
		return errors.New("bench: a duration or a request count is required")
	}
	if c.Warmup < 0 {
		return fmt.Errorf("bench: warm-up %s is negative", c.Warmup)
	}
	return nil
}

// Result is one load run's measurements.
type Result struct {
	Target   string        `json:"target"`
	Requests int           `json:"requests"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// RPS is measured requests per second of Elapsed.
	RPS float64       `json:"rps"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// CPUPerRequest is the whole process's CPU time (client, proxy and
	// upstream) over the measured period divided by Requests; zero where
	// the platform does not report it.
	CPUPerRequest time.Duration `json:"cpu_per_request_ns"`
	// BytesPerRequest and AllocsPerRequest are the whole process's heap
	// allocations over the measured period divided by Requests.
	BytesPerRequest  float64 `json:"bytes_per_request"`
	AllocsPerRequest float64 `json:"allocs_per_request"`
}

// Target is an endpoint under load. It keeps its client connections
// between runs; runs on one Target must not overlap.
type Target struct {
	Name   string
	url    string
	cookie string
	roots  *x509.CertPool

	mu      sync.Mutex
	clients []*http.Transport
}

// Close closes the target's idle client connections.
func (t *Target) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.clients {
		c.CloseIdleConnections()
	}
}

func (t *Target) transports(n int) []*http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.clients) < n {
		t.clients = append(t.clients, clientTransport(t.roots))
	}
	return t.clients[:n]
}

// Get sends one request to the target and returns the response with its
// body read.
func (t *Target) Get(ctx context.Context) (*http.Response, []byte, error) {
	req, err := t.newRequest(ctx)
	if err != nil {
		return nil, nil, err
	}
	resp, err := t.transports(1)[0].RoundTrip(req)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %s: %w", t.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %s: read body: %w", t.Name, err)
	}
	return resp, body, nil
}

func (t *Target) newRequest(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", t.Name, err)
	}
	req.Host = Host
	req.Header.Set("Cookie", t.cookie)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// Run loads the target and returns the measurements. Any answer other than
// 200 stops the run with an error.
func (t *Target) Run(ctx context.Context, cfg LoadConfig) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	clients := t.transports(cfg.Concurrency)

	var (
		start       = time.Now()
		measureFrom = start.Add(cfg.Warmup)
		end         = measureFrom.Add(cfg.Duration)
		remaining   atomic.Int64
	)
	if cfg.Requests > 0 {
		measureFrom, end = start, time.Time{}
		remaining.Store(int64(cfg.Requests))
	}

	lat := make([][]time.Duration, cfg.Concurrency)
	var wg sync.WaitGroup
	for i, tr := range clients {
		wg.Go(func() {
			req, err := t.newRequest(ctx)
			if err != nil {
				cancel(err)
				return
			}
			var mine []time.Duration
			if cfg.Requests > 0 {
				mine = make([]time.Duration, 0, cfg.Requests/cfg.Concurrency+1)
			} else {
				mine = make([]time.Duration, 0, 4096)
			}
			defer func() { lat[i] = mine }()
			for ctx.Err() == nil {
				if cfg.Requests > 0 && remaining.Add(-1) < 0 {
					return
				}
				t0 := time.Now()
				if !end.IsZero() && !t0.Before(end) {
					return
				}
				if err := roundTrip(tr, req); err != nil {
					cancel(fmt.Errorf("bench: %s: %w", t.Name, err))
					return
				}
				if !t0.Before(measureFrom) {
					mine = append(mine, time.Since(t0))
				}
			}
		})
	}

	// CPU time and allocations are sampled at the edges of the measured
	// period.
	var u0, u1 usage
	u0.sample()
	if cfg.Requests <= 0 {
		if !sleepUntil(ctx, measureFrom) {
			wg.Wait()
			return Result{}, context.Cause(ctx)
		}
		u0.sample()
		sleepUntil(ctx, end)
		u1.sample()
	}
	wg.Wait()
	if cfg.Requests > 0 {
		u1.sample()
		end = time.Now()
	}
	if err := context.Cause(ctx); err != nil {
		return Result{}, err
	}

	all := slices.Concat(lat...)
	slices.Sort(all)
	elapsed := end.Sub(measureFrom)
	res := Result{
		Target:   t.Name,
		Requests: len(all),
		Elapsed:  elapsed,
		P50:      percentile(all, 50),
		P90:      percentile(all, 90),
		P99:      percentile(all, 99),
	}
	if len(all) > 0 {
		res.Max = all[len(all)-1]
		res.RPS = float64(len(all)) / elapsed.Seconds()
		n := len(all)
		if u0.cpu > 0 && u1.cpu > u0.cpu {
			res.CPUPerRequest = (u1.cpu - u0.cpu) / time.Duration(n)
		}
		res.BytesPerRequest = float64(u1.bytes-u0.bytes) / float64(n)
		res.AllocsPerRequest = float64(u1.objects-u0.objects) / float64(n)
	}
	return res, nil
}

// usage is the process's CPU time and cumulative heap allocations.
type usage struct {
	cpu            time.Duration
	bytes, objects uint64
}

func (u *usage) sample() {
	m := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}}
	metrics.Read(m)
	u.cpu = cpuTime()
	if m[0].Value.Kind() == metrics.KindUint64 {
		u.bytes = m[0].Value.Uint64()
	}
	if m[1].Value.Kind() == metrics.KindUint64 {
		u.objects = m[1].Value.Uint64()
	}
}

// roundTrip sends req on tr and reads the whole answer, which must be 200.
func roundTrip(tr *http.Transport, req *http.Request) error {
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d (Location %q), want 200", resp.StatusCode, resp.Header.Get("Location"))
	}
	return nil
}

// sleepUntil waits until t or until ctx ends, and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// percentile returns the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
