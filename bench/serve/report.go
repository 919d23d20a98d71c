package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// spread is the median and range of per-round values.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

func (s spread) String() string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.Median, s.Min, s.Max)
}

// ratioRow is one proxy against the bare proxy, round by round.
type ratioRow struct {
	Target     string `json:"target"`
	Throughput spread `json:"throughput"`
	P50        spread `json:"p50"`
	P99        spread `json:"p99"`
	CPU        spread `json:"cpu_per_request"`
}

// ratios compares every target with the bare proxy within each round.
func ratios(runs []runResult, targets []*target) []ratioRow {
	bare := map[int]runResult{}
	for _, r := range runs {
		if r.Target == "bare" && !r.Burst {
			bare[r.Round] = r
		}
	}
	var rows []ratioRow
	for _, t := range targets {
		if t.Name == "bare" {
			continue
		}
		var thr, p50, p99, cpu []float64
		for _, r := range runs {
			b, ok := bare[r.Round]
			if r.Target != t.Name || r.Burst || !ok {
				continue
			}
			thr = append(thr, r.RPS/b.RPS)
			p50 = append(p50, float64(r.P50)/float64(b.P50))
			p99 = append(p99, float64(r.P99)/float64(b.P99))
			if b.CPUPerRequest > 0 {
				cpu = append(cpu, float64(r.CPUPerRequest)/float64(b.CPUPerRequest))
			}
		}
		rows = append(rows, ratioRow{Target: t.Name, Throughput: spreadOf(thr), P50: spreadOf(p50), P99: spreadOf(p99), CPU: spreadOf(cpu)})
	}
	return rows
}

// burstRow is one pair of gateway runs, without and with concurrent
// sign-ins.
type burstRow struct {
	Without runResult `json:"without"`
	With    runResult `json:"with"`
}

func ms(d time.Duration) string  { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "machine: %s\nwrk: %d connections, %d threads, %s per run\n", r.Machine, r.Conns, r.Threads, r.Duration)
	fronted := r.Replicas > 1
	if fronted {
		fmt.Fprintf(w, "gateway: store %s, %d replicas behind a round-robin TCP front (TLS ends at the replicas); "+
			"its CPU per request is summed over the replicas, the front's apart\n\n", r.Store, r.Replicas)
		fmt.Fprintln(w, "| round | proxy | req/s | p50 | p99 | proxy CPU/req | front CPU/req | upstream CPU/req | new TCP conns | load avg before |")
		fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
	} else {
		fmt.Fprintf(w, "gateway: store %s, 1 replica\n\n", r.Store)
		fmt.Fprintln(w, "| round | proxy | req/s | p50 | p99 | proxy CPU/req | upstream CPU/req | new TCP conns | load avg before |")
		fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---|")
	}
	for _, x := range r.Runs {
		if x.Burst {
			continue
		}
		front := ""
		if fronted {
			front = " – |"
			if x.Target == "portcullis" {
				front = fmt.Sprintf(" %.1f µs |", us(x.FrontCPUPerRequest))
			}
		}
		fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %.1f µs |%s %.1f µs | %d | %s |\n", x.Round, x.Target, x.RPS, ms(x.P50), ms(x.P99),
			us(x.CPUPerRequest), front, us(x.UpstreamCPUPerRequest), x.NewConnections, x.LoadAvg)
	}
	fmt.Fprintln(w, "\nAgainst the bare proxy, per round (median and range):")
	fmt.Fprintln(w, "\n| proxy | throughput | p50 | p99 | CPU per request |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", x.Target, x.Throughput, x.P50, x.P99, x.CPU)
	}
	if len(r.Burst) > 0 {
		fmt.Fprintln(w, "\nThe gateway during a burst of concurrent sign-ins, against the run without it in the same pair:")
		fmt.Fprintln(w, "\n| pair | req/s without → with | p99 without → with | throughput ratio | p99 ratio | sign-ins (503) during the run |")
		fmt.Fprintln(w, "|---:|---|---|---:|---:|---|")
		var thr, p99 []float64
		for i, x := range r.Burst {
			tr, pr := x.With.RPS/x.Without.RPS, float64(x.With.P99)/float64(x.Without.P99)
			thr, p99 = append(thr, tr), append(p99, pr)
			fmt.Fprintf(w, "| %d | %.0f → %.0f | %s → %s | %.2f | %.2f | %d (%d) |\n", i+1, x.Without.RPS, x.With.RPS,
				ms(x.Without.P99), ms(x.With.P99), tr, pr, x.With.Logins, x.With.LoginsBusy)
		}
		fmt.Fprintf(w, "\nburst throughput ratio %s, p99 ratio %s\n", spreadOf(thr), spreadOf(p99))
	}
	if l := r.Logins; l != nil {
		fmt.Fprintf(w, "\nsign-ins alone, %d concurrent: %.1f/s (p50 %s, p99 %s; %d answered 503); argon2id ceiling %.1f hashes/s on every core: ratio %.2f\n",
			l.Concurrency, l.PerSecond, ms(l.P50), ms(l.P99), l.Busy, l.CeilingPerSecond, l.Ratio)
	}
	if fronted {
		fmt.Fprintf(w, "\ngateway resident memory at the end, %d replicas together: %.1f MB\n", r.Replicas, float64(r.GatewayRSS)/1e6)
	} else {
		fmt.Fprintf(w, "\ngateway resident memory at the end: %.1f MB\n", float64(r.GatewayRSS)/1e6)
	}
}
