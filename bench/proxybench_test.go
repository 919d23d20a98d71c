package bench

import (
	"net/http"
	"testing"
	"time"
)

// TestEnv checks the set-up the benchmark relies on: both paths answer 200
// with the upstream's body, and only the gateway's upstream requests carry
// the signed-in user's identity.
func TestEnv(t *testing.T) {
	env, err := NewEnv(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)

	for _, tc := range []struct {
		target *Target
		body   string
	}{
		{env.Bare(), `{"user":null}`},
		{env.Gateway(), `{"user":"alice"}`},
	} {
		t.Run(tc.target.Name, func(t *testing.T) {
			for range 3 {
				resp, body, err := tc.target.Get(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK || string(body) != tc.body {
					t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, tc.body)
				}
			}
			// A short load run goes through the same checks as the benchmark.
			res, err := env.Run(t.Context(), tc.target, LoadConfig{Concurrency: 4, Requests: 40})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 40 || res.P99 <= 0 || res.RPS <= 0 {
				t.Errorf("result %+v: want 40 requests with latencies", res)
			}
		})
	}
}

// TestRunFailsOnRedirect makes sure a gateway answering with a sign-in
// redirect (no session) fails the run rather than being measured.
func TestRunFailsOnRedirect(t *testing.T) {
	env, err := NewEnv(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	signedOut := &Target{Name: "signed-out", url: env.Gateway().url, roots: env.roots}
	t.Cleanup(signedOut.Close)
	if _, err := env.Run(t.Context(), signedOut, LoadConfig{Concurrency: 2, Requests: 4}); err == nil {
		t.Fatal("run without a session succeeded, want an error")
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0, 1}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

// BenchmarkGatewayVsBareProxy sends b.N authenticated GETs through each of
// the bare proxy and the gateway, in three alternating rounds, 32 at a time.
// ns/op is the time for one request on each path; the ratios and
// percentiles are reported as metrics.
func BenchmarkGatewayVsBareProxy(b *testing.B) {
	env, err := NewEnv(b.Context(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(env.Close)
	const concurrency, rounds = 32, 3
	// Open every connection before timing.
	for _, t := range []*Target{env.Bare(), env.Gateway()} {
		if _, err := env.Run(b.Context(), t, LoadConfig{Concurrency: concurrency, Requests: 4 * concurrency}); err != nil {
			b.Fatal(err)
		}
	}

	b.ResetTimer()
	per := max(b.N/rounds, 1)
	c, err := Compare(b.Context(), env, CompareConfig{
		Load:   LoadConfig{Concurrency: concurrency, Requests: per},
		Rounds: rounds,
		Goals:  DefaultGoals(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()

	b.ReportMetric(c.Bare.RPS, "bare-req/s")
	b.ReportMetric(c.Gateway.RPS, "gateway-req/s")
	b.ReportMetric(c.ThroughputRatio, "throughput-ratio")
	b.ReportMetric(float64(c.Bare.P99)/float64(time.Millisecond), "bare-p99-ms")
	b.ReportMetric(float64(c.Gateway.P99)/float64(time.Millisecond), "gateway-p99-ms")
	b.ReportMetric(float64(c.AddedP99)/float64(time.Millisecond), "added-p99-ms")
	if c.AddedCPU != 0 {
		b.ReportMetric(float64(c.AddedCPU)/float64(time.Microsecond), "added-cpu-µs/req")
	}
	b.ReportMetric(c.Gateway.AllocsPerRequest-c.Bare.AllocsPerRequest, "added-allocs/req")
}
