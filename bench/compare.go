package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Goals are what the gateway is held to against the bare proxy.
type Goals struct {
	// MinThroughputRatio is the least share of the bare proxy's requests
	// per second the gateway must keep.
	MinThroughputRatio float64 `json:"min_throughput_ratio"`
	// MaxAddedP99 bounds how much the gateway may add to the p99 latency;
	// the added p99 must be below it.
	MaxAddedP99 time.Duration `json:"max_added_p99_ns"`
}

// DefaultGoals are the gateway's published targets: at least 85 % of the
// bare proxy's throughput and less than 1 ms added at the 99th percentile.
func DefaultGoals() Goals {
	return Goals{MinThroughputRatio: 0.85, MaxAddedP99: time.Millisecond}
}

// CompareConfig is a comparison: Rounds rounds of one load run per target.
type CompareConfig struct {
	Load   LoadConfig
	Rounds int
	Goals  Goals
}

// Round is one load run of each target. Rounds alternate which target goes
// first (bare, gateway; gateway, bare; ...) so that a machine getting
// busier or quieter does not favour one of them.
type Round struct {
	First   string `json:"first"`
	Bare    Result `json:"bare"`
	Gateway Result `json:"gateway"`
}

// Summary is the median over rounds of each figure, taken separately.
type Summary struct {
	RPS              float64       `json:"rps"`
	P50              time.Duration `json:"p50_ns"`
	P99              time.Duration `json:"p99_ns"`
	CPUPerRequest    time.Duration `json:"cpu_per_request_ns"`
	BytesPerRequest  float64       `json:"bytes_per_request"`
	AllocsPerRequest float64       `json:"allocs_per_request"`
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Machine     Machine       `json:"machine"`
	Concurrency int           `json:"concurrency"`
	Warmup      time.Duration `json:"warmup_ns"`
	Duration    time.Duration `json:"duration_ns"`
	Rounds      []Round       `json:"rounds"`
	Bare        Summary       `json:"bare"`
	Gateway     Summary       `json:"gateway"`
	// ThroughputRatio is the gateway's median requests per second over
	// the bare proxy's.
	ThroughputRatio float64 `json:"throughput_ratio"`
	// RoundRatio is the median of the per-round ratios, which pairs runs
	// made close together in time.
	RoundRatio float64       `json:"round_ratio"`
	AddedP50   time.Duration `json:"added_p50_ns"`
	AddedP99   time.Duration `json:"added_p99_ns"`
	// AddedCPU is the extra process CPU time per request on the gateway
	// path; client and upstream cost the same on both paths.
	AddedCPU      time.Duration `json:"added_cpu_per_request_ns"`
	Goals         Goals         `json:"goals"`
	ThroughputMet bool          `json:"throughput_met"`
	P99Met        bool          `json:"p99_met"`
}

// Compare runs the rounds against env's two targets and summarises them.
func Compare(ctx context.Context, env *Env, cfg CompareConfig) (Comparison, error) {
	if cfg.Rounds < 1 {
		return Comparison{}, fmt.Errorf("bench: rounds %d must be at least 1", cfg.Rounds)
	}
	if cfg.Load.Requests <= 0 && cfg.Load.Duration <= 0 {
		return Comparison{}, errors.New("bench: a duration or a request count is required")
	}
	c := Comparison{
		Machine:     currentMachine(),
		Concurrency: cfg.Load.Concurrency,
		Warmup:      cfg.Load.Warmup,
		Duration:    cfg.Load.Duration,
		Goals:       cfg.Goals,
	}
	for i := range cfg.Rounds {
		order := []*Target{env.Bare(), env.Gateway()}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		r := Round{First: order[0].Name}
		for _, t := range order {
			res, err := env.Run(ctx, t, cfg.Load)
			if err != nil {
				return c, fmt.Errorf("round %d: %w", i+1, err)
			}
			if t == env.Gateway() {
				r.Gateway = res
			} else {
				r.Bare = res
			}
		}
		c.Rounds = append(c.Rounds, r)
	}
	c.Machine.LoadAfter = LoadAvg()
	c.summarise()
	return c, nil
}

func (c *Comparison) summarise() {
	pick := func(f func(Round) Result) Summary {
		var rps, bytes, allocs []float64
		var p50, p99, cpu []time.Duration
		for _, r := range c.Rounds {
			res := f(r)
			rps = append(rps, res.RPS)
			p50 = append(p50, res.P50)
			p99 = append(p99, res.P99)
			cpu = append(cpu, res.CPUPerRequest)
			bytes = append(bytes, res.BytesPerRequest)
			allocs = append(allocs, res.AllocsPerRequest)
		}
		return Summary{RPS: median(rps), P50: median(p50), P99: median(p99), CPUPerRequest: median(cpu),
			BytesPerRequest: median(bytes), AllocsPerRequest: median(allocs)}
	}
	c.Bare = pick(func(r Round) Result { return r.Bare })
	c.Gateway = pick(func(r Round) Result { return r.Gateway })
	var ratios []float64
	for _, r := range c.Rounds {
		if r.Bare.RPS > 0 {
			ratios = append(ratios, r.Gateway.RPS/r.Bare.RPS)
		}
	}
	c.RoundRatio = median(ratios)
	if c.Bare.RPS > 0 {
		c.ThroughputRatio = c.Gateway.RPS / c.Bare.RPS
	}
	c.AddedP50 = c.Gateway.P50 - c.Bare.P50
	c.AddedP99 = c.Gateway.P99 - c.Bare.P99
	if c.Bare.CPUPerRequest > 0 && c.Gateway.CPUPerRequest > 0 {
		c.AddedCPU = c.Gateway.CPUPerRequest - c.Bare.CPUPerRequest
	}
	c.ThroughputMet = c.ThroughputRatio >= c.Goals.MinThroughputRatio
	c.P99Met = c.AddedP99 < c.Goals.MaxAddedP99
}

// median returns the middle value, or the mean of the two middle values.
func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// WriteText prints the comparison as a table followed by the ratios.
func (c Comparison) WriteText(w io.Writer) error {
	p := &errWriter{w: w}
	p.printf("GET https://%s%s as a signed-in user, TLS on loopback, HTTP/1.1 keep-alive\n", Host, Path)
	p.printf("%d connections per target, %d rounds of %s warm-up + %s measured per target, order alternating\n",
		c.Concurrency, len(c.Rounds), c.Warmup, c.Duration)
	p.printf("machine: NumCPU %d, GOMAXPROCS %d, %s, load average %s before, %s after\n\n",
		c.Machine.NumCPU, c.Machine.GOMAXPROCS, c.Machine.GoVersion, orNA(c.Machine.LoadBefore), orNA(c.Machine.LoadAfter))

	tw := tabwriter.NewWriter(p, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\ttarget\trequests\treq/s\tp50\tp90\tp99\tmax\tcpu/req\tallocs/req\tKB/req\t")
	for i, r := range c.Rounds {
		pair := []Result{r.Bare, r.Gateway}
		if r.First == r.Gateway.Target {
			slices.Reverse(pair)
		}
		for _, res := range pair {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.1f\t\n", i+1, res.Target, res.Requests, res.RPS,
				ms(res.P50), ms(res.P90), ms(res.P99), ms(res.Max), us(res.CPUPerRequest), res.AllocsPerRequest, res.BytesPerRequest/1024)
		}
	}
	for _, s := range []struct {
		name string
		Summary
	}{{"bare", c.Bare}, {"gateway", c.Gateway}} {
		fmt.Fprintf(tw, "median\t%s\t\t%.0f\t%s\t\t%s\t\t%s\t%.0f\t%.1f\t\n", s.name, s.RPS, ms(s.P50), ms(s.P99),
			us(s.CPUPerRequest), s.AllocsPerRequest, s.BytesPerRequest/1024)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p.printf("\nthroughput ratio (gateway/bare): %.3f, median of per-round ratios %.3f; goal ≥ %.2f: %s\n",
		c.ThroughputRatio, c.RoundRatio, c.Goals.MinThroughputRatio, verdict(c.ThroughputMet))
	p.printf("added p99: %s (gateway %s, bare %s); goal < %s: %s\n",
		signedMs(c.AddedP99), ms(c.Gateway.P99), ms(c.Bare.P99), ms(c.Goals.MaxAddedP99), verdict(c.P99Met))
	p.printf("added p50: %s (gateway %s, bare %s)\n", signedMs(c.AddedP50), ms(c.Gateway.P50), ms(c.Bare.P50))
	if c.AddedCPU != 0 {
		p.printf("added CPU per request: %s (gateway %s, bare %s, whole process)\n",
			signedUs(c.AddedCPU), us(c.Gateway.CPUPerRequest), us(c.Bare.CPUPerRequest))
	}
	p.printf("added allocations per request: %+.0f objects, %+.1f KB (whole process)\n",
		c.Gateway.AllocsPerRequest-c.Bare.AllocsPerRequest, (c.Gateway.BytesPerRequest-c.Bare.BytesPerRequest)/1024)
	return p.err
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
}

func signedMs(d time.Duration) string {
	return fmt.Sprintf("%+.3fms", float64(d)/float64(time.Millisecond))
}

func signedUs(d time.Duration) string {
	return fmt.Sprintf("%+.1fµs", float64(d)/float64(time.Microsecond))
}

// errWriter keeps the first write error so that printing can go on
// unchecked.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}
