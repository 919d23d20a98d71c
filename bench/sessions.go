package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/geoip"
	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
	"github.com/portcullis/portcullis/policies"
)

// SessionIdle is the idle timeout of the session benchmarks' managers and
// gateway, as in production's default: LastSeen is then written at most
// every 30 s per session (session.Manager's touchEvery).
const SessionIdle = 15 * time.Minute

// touchPeriod is the interval the session manager writes LastSeen at for
// SessionIdle.
const touchPeriod = 30 * time.Second

// SessionStore is a SQLite store loaded with many sessions on Host, for the
// session benchmarks. Session n has the cookie token SessionToken(n) and
// belongs to user n mod Users; every user may reach the whoami route.
// LastSeen is spread evenly over the touch period before the load, so that
// the manager writes LastSeen at the steady rate of sessions that are all in
// use: each session once per 30 s, starting while the benchmark runs.
type SessionStore struct {
	Store  *sqlite.Store
	Stored int
	Users  int
	// Loaded is when the sessions were stored.
	Loaded time.Time
}

// SessionToken is the cookie token of the benchmark's session n.
func SessionToken(n int) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	sum := sha256.Sum256(append([]byte("portcullis-bench-session:"), b[:]...))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SessionID is the store ID of the benchmark's session n: what
// web.TokenID makes of its token.
func SessionID(n int) string {
	sum := sha256.Sum256([]byte(SessionToken(n)))
	return hex.EncodeToString(sum[:])
}

// SessionUser is the user name of the benchmark's user n.
func SessionUser(n int) string { return fmt.Sprintf("user%07d", n) }

// LoadSessions opens a SQLite store in dir and stores users and sessions in
// batches through the store's bulk path. progress, if not nil, is called
// after each batch with the sessions stored so far.
func LoadSessions(ctx context.Context, dir string, stored, users int, progress func(int)) (*SessionStore, error) {
	if stored < 1 || users < 1 || users > stored {
		return nil, fmt.Errorf("bench: %d sessions of %d users: want 1 <= users <= sessions", stored, users)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "portcullis.db"))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	now := time.Now()
	const batch = 20000
	us := make([]store.User, 0, batch)
	for n := 0; n < users; n++ {
		name := SessionUser(n)
		us = append(us, store.User{ID: "id-" + name, Username: name, DisplayName: "User " + name,
			PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$bm90LWEtcmVhbC1zYWx0$bm90LWEtcmVhbC1oYXNo",
			Products:     []string{"whoami"}, Email: name + "@example.test", CreatedAt: now, UpdatedAt: now})
		if len(us) == batch || n == users-1 {
			if err := db.CreateUsers(ctx, us); err != nil {
				db.Close()
				return nil, fmt.Errorf("bench: %w", err)
			}
			us = us[:0]
		}
	}
	ss := make([]store.Session, 0, batch)
	for n := 0; n < stored; n++ {
		// A multiplicative hash spreads LastSeen over the touch period
		// whatever the order sessions are read in.
		age := time.Duration(uint64(n)*2654435761%uint64(touchPeriod/time.Millisecond)) * time.Millisecond
		ss = append(ss, store.Session{
			ID: SessionID(n), LoginID: fmt.Sprintf("login-%d", n), UserID: "id-" + SessionUser(n%users), Host: Host,
			Methods: []string{"pwd", "otp"}, AuthTime: now.Add(-time.Minute), LastSeen: now.Add(-age),
			ExpiresAt: now.Add(2 * time.Hour),
		})
		if len(ss) == batch || n == stored-1 {
			if err := db.CreateSessions(ctx, ss); err != nil {
				db.Close()
				return nil, fmt.Errorf("bench: %w", err)
			}
			ss = ss[:0]
			if progress != nil {
				progress(n + 1)
			}
		}
	}
	return &SessionStore{Store: db, Stored: stored, Users: users, Loaded: now}, nil
}

// Close closes the store.
func (s *SessionStore) Close() error { return s.Store.Close() }

// Manager returns a session manager on the store with the given cache size
// (session.Deps.CacheSize: 0 is the default, negative none) and the real
// clock.
func (s *SessionStore) Manager(cacheSize int) *session.Manager {
	return session.New(session.Deps{Sessions: s.Store, Records: s.Store, Users: s.Store, IdleTimeout: SessionIdle,
		CacheSize: cacheSize, Log: slog.New(slog.DiscardHandler), Now: time.Now, Rand: rand.Reader})
}

// ReadSession reads session n through m as the proxy does, and fails unless
// it is valid on Host and belongs to its user.
func (s *SessionStore) ReadSession(ctx context.Context, m *session.Manager, id string, n int) error {
	got, ok, err := m.ByID(ctx, id, Host)
	if err != nil {
		return fmt.Errorf("bench: session %d: %w", n, err)
	}
	if !ok {
		return fmt.Errorf("bench: session %d: not valid", n)
	}
	if got.User.ID != "id-"+SessionUser(n%s.Users) {
		return fmt.Errorf("bench: session %d: user %q", n, got.User.ID)
	}
	return nil
}

// Parallel runs op(i) for i in [0, ops) on workers goroutines, each taking
// the next i, and returns the elapsed time and the first error.
func Parallel(workers, ops int, op func(i int) error) (time.Duration, error) {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= ops {
					return
				}
				if err := op(i); err != nil {
					errOnce.Do(func() { first = err })
					next.Store(int64(ops)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

// SessionGateway is a gateway (gateway.New, the shipped policies, the
// Anonymous-IP test database) on a SessionStore with an upstream that
// answers with the user name the gateway handed it. Requests are served by
// calling the gateway's handler directly: no TLS and no client, so what a
// session lookup costs is a larger share of each request than in
// production.
type SessionGateway struct {
	sessions *SessionStore
	upstream *httptest.Server
	signals  *geoip.Reader
	gw       *gateway.Server
	// cookies are the Cookie headers of the sessions, by session number.
	cookies []string
}

// NewSessionGateway starts the upstream and builds the gateway. Requests may
// name the first active sessions; dir holds the GeoIP test database.
func NewSessionGateway(ctx context.Context, dir string, s *SessionStore, active int) (g *SessionGateway, err error) {
	g = &SessionGateway{sessions: s}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	g.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.Header.Get(assertion.HeaderAssertion) == "" {
			io.WriteString(w, "-")
			return
		}
		io.WriteString(w, r.Header.Get(assertion.HeaderUser))
	}))
	upstreamURL, err := url.Parse(g.upstream.URL)
	if err != nil {
		return nil, fmt.Errorf("bench: upstream url: %w", err)
	}
	signer, err := assertion.NewSigner(ctx, s.Store, assertion.SignerConfig{Issuer: "https://" + Host, TTL: assertion.MaxTTL})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	engine, err := policies.New(ctx, policies.Config{})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := geoiptest.Generate(dir); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	g.signals, err = geoip.Open(geoip.Config{AnonymousIPPath: filepath.Join(dir, geoiptest.AnonymousIPFile)})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	g.gw, err = gateway.New(gateway.Config{
		Routes:       []gateway.Route{{Name: "whoami", Host: Host, PathPrefix: "/", Upstream: upstreamURL}},
		Session:      gateway.SessionConfig{IdleTimeout: SessionIdle, MaxLifetime: 2 * time.Hour},
		AssertionTTL: assertion.MaxTTL,
	}, gateway.Deps{Users: s.Store, Hits: s.Store, Sessions: s.Store, Records: s.Store, Devices: s.Store, Factors: s.Store,
		CodeKey: benchCodeKey, Signer: signer, Policy: engine, Signals: g.signals, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	g.cookies = make([]string, active)
	for n := range g.cookies {
		g.cookies[n] = session.Cookie + "=" + SessionToken(n)
	}
	return g, nil
}

// Request sends GET https://bank.test/whoami with session n's cookie
// through the gateway's handler and fails unless the upstream answered for
// the session's user.
func (g *SessionGateway) Request(n int) error {
	r := httptest.NewRequest(http.MethodGet, "https://"+Host+Path, nil)
	r.RemoteAddr = "192.0.2.10:40000"
	r.Header.Set("Cookie", g.cookies[n])
	w := httptest.NewRecorder()
	g.gw.ServeHTTP(w, r)
	want := SessionUser(n % g.sessions.Users)
	if w.Code != http.StatusOK || w.Body.String() != want {
		return fmt.Errorf("bench: session %d: got %d %q, want 200 %q", n, w.Code, w.Body.String(), want)
	}
	return nil
}

// Close stops the upstream and releases the gateway. The store stays open.
func (g *SessionGateway) Close() {
	if g.gw != nil {
		g.gw.Close()
	}
	if g.upstream != nil {
		g.upstream.Close()
	}
	if g.signals != nil {
		g.signals.Close()
	}
}

// CacheRounds compares cached and uncached reads within one run. Each round
// runs perRound operations of each kind, alternating which goes first;
// cached operations cycle through the first hot sessions (a number the
// caches hold), uncached ones through the cold sessions after them (more
// than the caches hold, so every read misses). Before each measured phase a
// pass over the hot sessions refills the caches, unmeasured.
type CacheRounds struct {
	Rounds, PerRound, Workers int
	Hot, Cold                 int
}

// CacheResult is what CacheRounds measured: the mean time per operation of
// each kind over all rounds and the ratio of the uncached rate to the cached
// rate (cached ÷ uncached time per operation), with the per-round ratios.
type CacheResult struct {
	Cached, Uncached time.Duration
	Ratio            float64
	RoundRatios      []float64
	// CachedCPU and UncachedCPU are the process's CPU time per operation
	// (zero where the platform does not report it), and CPURatio is
	// CachedCPU ÷ UncachedCPU: what the ratio would be on an otherwise
	// idle machine where the operations are CPU-bound.
	CachedCPU, UncachedCPU time.Duration
	CPURatio               float64
}

// Run runs the rounds with op(n), n the session number.
func (c CacheRounds) Run(op func(n int) error) (CacheResult, error) {
	var res CacheResult
	var cachedSum, uncachedSum, cachedCPU, uncachedCPU time.Duration
	cold := 0 // the next cold session, so no round reads one a cache kept
	for round := range c.Rounds {
		var t [2]time.Duration
		for k := range 2 {
			uncached := (round+k)%2 == 1
			if _, err := Parallel(c.Workers, c.Hot, op); err != nil {
				return res, err
			}
			var err error
			cpu0 := cpuTime()
			// The phases carry a profiler label, so that a CPU profile
			// of the benchmark can be split by them (pprof -tagfocus).
			if uncached {
				start := cold
				pprof.Do(context.Background(), pprof.Labels("sessions", "uncached"), func(context.Context) {
					t[1], err = Parallel(c.Workers, c.PerRound, func(i int) error { return op(c.Hot + (start+i)%c.Cold) })
				})
				cold = (cold + c.PerRound) % c.Cold
			} else {
				pprof.Do(context.Background(), pprof.Labels("sessions", "cached"), func(context.Context) {
					t[0], err = Parallel(c.Workers, c.PerRound, func(i int) error { return op(i % c.Hot) })
				})
			}
			if err != nil {
				return res, err
			}
			if uncached {
				uncachedCPU += cpuTime() - cpu0
			} else {
				cachedCPU += cpuTime() - cpu0
			}
		}
		cachedSum += t[0]
		uncachedSum += t[1]
		res.RoundRatios = append(res.RoundRatios, float64(t[0])/float64(t[1]))
	}
	n := time.Duration(c.Rounds * c.PerRound)
	res.Cached, res.Uncached = cachedSum/n, uncachedSum/n
	res.Ratio = float64(cachedSum) / float64(uncachedSum)
	res.CachedCPU, res.UncachedCPU = cachedCPU/n, uncachedCPU/n
	if uncachedCPU > 0 {
		res.CPURatio = float64(cachedCPU) / float64(uncachedCPU)
	}
	return res, nil
}
