package bench

import (
	"flag"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/gateway/session"
)

// Session numbers of the cache benchmarks: hot sessions fit the session
// cache and the gateway's assertion cache (10,000 entries each); cold ones
// are four times as many, read in turn, so none is still cached when it
// comes round again.
const (
	benchHot  = 1000
	benchCold = 4 * session.DefaultCacheSize
)

// sessionWorkers is how many requests BenchmarkSessionCache keeps in
// flight: more than the cores, as a gateway serving many connections has, so
// that a request waiting on the store does not leave a core idle.
var sessionWorkers = flag.Int("sessions.workers", 8, "BenchmarkSessionCache: operations in flight at once")

// TestSessionBenchSetup checks what the session benchmarks rely on: every
// stored session reads back valid for its user through the manager, with
// and without the cache, and through the gateway the upstream is handed
// the session's user.
func TestSessionBenchSetup(t *testing.T) {
	s, err := LoadSessions(t.Context(), t.TempDir(), 300, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, size := range []int{0, -1} {
		m := s.Manager(size)
		for n := range s.Stored {
			if err := s.ReadSession(t.Context(), m, SessionID(n), n); err != nil {
				t.Fatalf("cache size %d: %v", size, err)
			}
		}
	}
	g, err := NewSessionGateway(t.Context(), t.TempDir(), s, s.Stored)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	res, err := CacheRounds{Rounds: 2, PerRound: 50, Workers: 2, Hot: 10, Cold: 290}.Run(g.Request)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cached <= 0 || res.Uncached <= 0 || len(res.RoundRatios) != 2 {
		t.Errorf("result %+v: want times for both kinds and two rounds", res)
	}
}

// BenchmarkSessionCache compares requests whose session is cached with
// requests whose session is not, on the SQLite store, within one run:
//
//   - by_id: session.Manager.ByID alone;
//   - gateway: the gateway's handler (gateway.New) for GET /whoami,
//     session lookup, access decision, assertion and proxying to a
//     loopback upstream included.
//
// b.N operations of each kind are spread over three alternating rounds;
// it reports cached-ns/op, uncached-ns/op and uncached÷cached rate as
// ratio, with the lowest per-round ratio as min-ratio. Use a fixed
// -benchtime Nx.
func BenchmarkSessionCache(b *testing.B) {
	s, err := LoadSessions(b.Context(), b.TempDir(), benchHot+benchCold, benchHot+benchCold, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ids := make([]string, s.Stored)
	for n := range ids {
		ids[n] = SessionID(n)
	}
	report := func(b *testing.B, op func(n int) error) {
		rounds := CacheRounds{Rounds: 3, PerRound: max(1, b.N/3), Workers: *sessionWorkers, Hot: benchHot, Cold: benchCold}
		b.ResetTimer()
		res, err := rounds.Run(op)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Cached.Nanoseconds()), "cached-ns/op")
		b.ReportMetric(float64(res.Uncached.Nanoseconds()), "uncached-ns/op")
		b.ReportMetric(res.Ratio, "ratio")
		b.ReportMetric(slices.Min(res.RoundRatios), "min-ratio")
		b.ReportMetric(float64(res.CachedCPU.Nanoseconds())/1e3, "cached-cpu-µs/op")
		b.ReportMetric(float64(res.UncachedCPU.Nanoseconds())/1e3, "uncached-cpu-µs/op")
		b.ReportMetric(res.CPURatio, "cpu-ratio")
	}
	b.Run("by_id", func(b *testing.B) {
		m := s.Manager(0)
		report(b, func(n int) error { return s.ReadSession(b.Context(), m, ids[n], n) })
	})
	b.Run("gateway", func(b *testing.B) {
		g, err := NewSessionGateway(b.Context(), b.TempDir(), s, s.Stored)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(g.Close)
		report(b, g.Request)
	})
}
