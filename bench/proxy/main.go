// Command proxy compares an authenticated GET through the Portcullis gateway
// with the same GET through a bare httputil.ReverseProxy, on loopback, and
// prints requests per second, latency percentiles and their ratios.
//
//	go run ./bench/proxy -duration 10s -concurrency 32
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/portcullis/portcullis/bench"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "proxy:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 5*time.Second, "measured time per target per round")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up before each measured period")
	concurrency := fs.Int("concurrency", 32, "workers per target, each on its own keep-alive connection")
	rounds := fs.Int("rounds", 3, "rounds; each runs both targets, alternating which goes first")
	asJSON := fs.Bool("json", false, "print the comparison as JSON")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the load runs to this file")
	memprofile := fs.String("memprofile", "", "write an allocation profile, taken at the end, to this file")
	mutexprofile := fs.String("mutexprofile", "", "write a mutex contention profile, taken at the end, to this file")
	only := fs.String("only", "", "load only this target (bare or gateway), for profiling one path; no comparison")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *duration <= 0 || *warmup < 0 || *rounds < 1 || *concurrency < 1 {
		return errors.New("duration and rounds must be positive, warmup not negative, concurrency at least 1")
	}
	if *only != "" && *only != "bare" && *only != "gateway" {
		return fmt.Errorf("-only %q: want bare or gateway", *only)
	}

	// Bound the whole run: every load run plus generous time for setup.
	limit := time.Duration(2**rounds)*(*warmup+*duration) + time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	dir, err := os.MkdirTemp("", "portcullis-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env, err := bench.NewEnv(ctx, dir)
	if err != nil {
		return err
	}
	defer env.Close()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	if *memprofile != "" {
		defer func() {
			if err := writeProfile("allocs", *memprofile); err != nil {
				fmt.Fprintln(stderr, "proxy: memprofile:", err)
			}
		}()
	}
	if *mutexprofile != "" {
		runtime.SetMutexProfileFraction(5)
		defer func() {
			if err := writeProfile("mutex", *mutexprofile); err != nil {
				fmt.Fprintln(stderr, "proxy: mutexprofile:", err)
			}
		}()
	}

	load := bench.LoadConfig{Concurrency: *concurrency, Warmup: *warmup, Duration: *duration}
	if *only != "" {
		return runOnly(ctx, env, *only, load, *rounds, *asJSON, stdout)
	}
	fmt.Fprintf(stderr, "running %d rounds × 2 targets × (%s + %s)…\n", *rounds, *warmup, *duration)
	c, err := bench.Compare(ctx, env, bench.CompareConfig{Load: load, Rounds: *rounds, Goals: bench.DefaultGoals()})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	return c.WriteText(stdout)
}

// runOnly loads one target for the given rounds and prints each round.
func runOnly(ctx context.Context, env *bench.Env, name string, load bench.LoadConfig, rounds int, asJSON bool, stdout io.Writer) error {
	t := env.Bare()
	if name == "gateway" {
		t = env.Gateway()
	}
	var results []bench.Result
	for range rounds {
		res, err := env.Run(ctx, t, load)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	for i, r := range results {
		fmt.Fprintf(stdout, "round %d %s: %d requests, %.0f req/s, p50 %s, p99 %s, cpu/request %s, %.0f allocs and %.0f bytes/request\n",
			i+1, r.Target, r.Requests, r.RPS, r.P50, r.P99, r.CPUPerRequest, r.AllocsPerRequest, r.BytesPerRequest)
	}
	return nil
}

// writeProfile writes the named runtime profile to path.
func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
