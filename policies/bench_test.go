package policies

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

func BenchmarkDecideLogin(b *testing.B) {
	e := newEngine(b, Config{})
	ctx := b.Context()
	in := cleanLogin()
	if d := e.Decide(ctx, in); !d.Allow {
		b.Fatalf("decision %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Decide(ctx, in)
	}
}

// BenchmarkDecideLoginLatency reports the distribution of single login
// decisions: median and 99th percentile as p50-ns and p99-ns, beside the
// mean (ns/op). Run with -benchtime=20000x or more for a stable p99.
func BenchmarkDecideLoginLatency(b *testing.B) {
	for _, tc := range []struct {
		name string
		in   Input
	}{
		{"clean", cleanLogin()},
		{"vpn", vpnLogin()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEngine(b, Config{})
			recordLatency(b, func() { e.Decide(b.Context(), tc.in) })
		})
	}
}

func BenchmarkDecideLoginPassword(b *testing.B) {
	e := newEngine(b, Config{})
	in := cleanLogin()
	in.Point = PointLoginPassword
	in.Device.Recognised = false
	in.Attempt = PasswordAttempt(true)
	recordLatency(b, func() { e.Decide(b.Context(), in) })
}

func BenchmarkDecideAccess(b *testing.B) {
	for _, tc := range []struct {
		name  string
		cache int
	}{
		{"cached", 0},
		{"uncached", -1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEngine(b, Config{AccessCacheSize: tc.cache})
			in := accessInput("/transfers/new", testNow.Unix()-60)
			if d := e.Decide(b.Context(), in); !d.Allow {
				b.Fatalf("decision %+v", d)
			}
			recordLatency(b, func() { e.Decide(b.Context(), in) })
		})
	}
}

// recordLatency runs f b.N times, timing each call, and reports the median
// and 99th percentile.
func recordLatency(b *testing.B, f func()) {
	b.Helper()
	b.ReportAllocs()
	samples := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		f()
		samples = append(samples, time.Since(start))
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkInputValue compares ways of turning an Input into the AST value
// a prepared query takes.
func BenchmarkInputValue(b *testing.B) {
	in := cleanLogin()
	b.Run("by_hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = in.value()
		}
	})
	b.Run("json_map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ := json.Marshal(in)
			var m map[string]any
			_ = json.Unmarshal(buf, &m)
			if _, err := ast.InterfaceToValue(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interface_to_value_struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ast.InterfaceToValue(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEvalLogin compares passing the input as a Go value (EvalInput,
// converted by OPA) with passing the hand-built AST value.
func BenchmarkEvalLogin(b *testing.B) {
	e := newEngine(b, Config{})
	pq := e.current.Load().queries[PointLogin]
	in := cleanLogin()
	b.Run("eval_input", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pq.Eval(b.Context(), rego.EvalInput(in)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("eval_parsed_input", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pq.Eval(b.Context(), rego.EvalParsedInput(in.value()), rego.EvalGenerateJSON(keepTerm)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
