package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/admin"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
	"github.com/portcullis/portcullis/plugins/store/faultproxy"
	"github.com/portcullis/portcullis/plugins/store/postgres/postgrestest"
	"github.com/portcullis/portcullis/plugins/store/redis/redistest"
)

// cluster is two replicas of the real serve sharing one PostgreSQL schema
// and one Redis prefix, each reaching both through a fault proxy the test
// can cut, and a front that passes TLS through to the replica the test
// names.
type cluster struct {
	t       *testing.T
	ctx     context.Context
	apps    [2]*app
	addrs   [2]string
	admins  [2]string // the admin listeners
	token   string    // the admin API's bearer token
	logs    [2]*composetest.LogBuffer
	pg      [2]*faultproxy.Proxy
	redis   [2]*faultproxy.Proxy
	rc      *redis.Client
	prefix  string
	outbox  string
	roots   *x509.CertPool
	site    string
	started time.Time
}

// startCluster starts the two replicas, one after the other (the first
// creates the schema, the code key and the demo customers), until the
// test ends.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	redisURL, opts := redistest.TCPOptions(t)
	dsn := postgrestest.Schema(t)
	c := &cluster{t: t, rc: redistest.Client(t, redisURL), prefix: redistest.Prefix(t, redisURL), roots: x509.NewCertPool()}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	c.ctx = ctx
	shared := t.TempDir()
	c.outbox = filepath.Join(shared, "outbox.jsonl")
	keyFile := filepath.Join(shared, "code.key")
	tokenFile := filepath.Join(shared, "admin.token")
	c.token = hex.EncodeToString(randomKey(t))
	if err := os.WriteFile(tokenFile, []byte(c.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var upstreams []net.Listener
	for range demoApps {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "upstream answered")
		}))
		t.Cleanup(up.Close)
		upstreams = append(upstreams, up.Listener)
	}
	pgTarget := pgHostPort(t, dsn)
	for i := range c.apps {
		dir := t.TempDir()
		if err := geoiptest.Generate(dir); err != nil {
			t.Fatal(err)
		}
		if err := writeDemoFiles(dir); err != nil {
			t.Fatal(err)
		}
		c.pg[i] = faultproxy.New(t, pgTarget)
		c.redis[i] = faultproxy.New(t, opts.Addr)
		dsnFile := filepath.Join(dir, "postgres.dsn")
		urlFile := filepath.Join(dir, "redis.url")
		proxied := strings.Replace(dsn, pgTarget, c.pg[i].Addr(), 1)
		if proxied == dsn {
			t.Fatalf("the DSN does not name %s as host:port", pgTarget)
		}
		if err := os.WriteFile(dsnFile, []byte(proxied+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rurl := "redis://" + c.redis[i].Addr() + "/" + strconv.Itoa(opts.DB) + "?max_retries=1&dial_timeout=1s&read_timeout=1s"
		if err := os.WriteFile(urlFile, []byte(rurl+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.addrs[i], c.admins[i] = composetest.FreeAddr(t), composetest.FreeAddr(t)
		text := strings.ReplaceAll(demoConfig(dir, c.addrs[i], c.admins[i], upstreams), "path: outbox.jsonl", "path: '"+c.outbox+"'") +
			"codes:\n  key_file: '" + keyFile + "'\n" +
			"admin:\n  tokens:\n    - name: ops\n      file: '" + tokenFile + "'\n" +
			"store:\n  driver: postgres\n  postgres:\n    dsn_file: '" + dsnFile + "'\n" +
			"  redis:\n    url_file: '" + urlFile + "'\n    prefix: '" + c.prefix + "'\n"
		cfg, err := config.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		c.logs[i] = &composetest.LogBuffer{}
		logger := slog.New(slog.NewTextHandler(c.logs[i], nil))
		started := make(chan *app, 1)
		done := make(chan error, 1)
		go func() {
			done <- serve(ctx, cfg, logger, func(a *app) error {
				if i == 0 {
					if err := seedCustomers(ctx, a, logger); err != nil {
						return err
					}
				}
				started <- a
				return nil
			})
		}()
		select {
		case c.apps[i] = <-started:
		case err := <-done:
			t.Fatalf("replica %d stopped: %v\n%s", i, err, c.logs[i].String())
		}
		logs := c.logs[i]
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
			if t.Failed() {
				t.Logf("replica %d log:\n%s", i, logs.String())
			}
			if strings.Contains(logs.String(), redisURL) || strings.Contains(logs.String(), proxied) {
				t.Errorf("replica %d logged the Redis URL or the DSN", i)
			}
		})
		c.roots.AppendCertsFromPEM(c.apps[i].rootPEM)
	}
	_, port, _ := net.SplitHostPort(c.addrs[0])
	c.site = "https://bank.localhost:" + port
	return c
}

// pgHostPort is the host:port the DSN names.
func pgHostPort(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Hostname() == "" {
		t.Fatalf("the test DSN is not a postgres:// URL with a host (%v)", err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// admin calls the admin API of replica i and returns the status.
func (c *cluster) admin(i int, method, path string) int {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.ctx, method, "http://"+c.admins[i]+admin.Prefix+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// person is a browser: its own cookies, and a front that sends each
// connection to the replica it is told (every request is a connection of
// its own).
type person struct {
	c      *cluster
	site   string // the origin it browses
	client *http.Client
	to     atomic.Int32
}

// person is a browser of the savings app's host.
func (c *cluster) person() *person { return c.personAt(c.site) }

// personAt is a browser of site, an origin of the gateway.
func (c *cluster) personAt(site string) *person {
	p := &person{c: c, site: site}
	jar, _ := cookiejar.New(nil)
	p.client = &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: c.roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, c.addrs[p.to.Load()])
			},
		}}
	return p
}

// api posts body to the JSON API path on replica i.
func (p *person) api(i int, path, body string) (int, demoAnswer) {
	p.c.t.Helper()
	p.to.Store(int32(i))
	resp, err := p.client.Post(p.site+"/.portcullis/api/v1/"+path, "application/json", strings.NewReader(body))
	if err != nil {
		p.c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans demoAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		p.c.t.Fatalf("%s on replica %d: %d: %v", path, i, resp.StatusCode, err)
	}
	return resp.StatusCode, ans
}

// get fetches path through replica i and returns the status.
func (p *person) get(i int, path string) int {
	p.c.t.Helper()
	p.to.Store(int32(i))
	resp, err := p.client.Get(p.site + path)
	if err != nil {
		p.c.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// signIn signs the person in as alice: the password on replica 0, the code
// sent by replica 1 and entered on replica 0.
func (p *person) signIn() {
	p.c.t.Helper()
	p.signInAs("alice", "wonderland-demo-42")
}

// signInAs signs the person in as username, as signIn does alice.
func (p *person) signInAs(username, password string) {
	t := p.c.t
	t.Helper()
	if c, ans := p.api(0, "login", `{"username":"`+username+`","password":"`+password+`"}`); c != http.StatusForbidden || ans.Status != "step_up_required" {
		t.Fatalf("login: %d %+v, want step_up_required", c, ans)
	}
	code := p.sendCode(1)
	if c, ans := p.api(0, "step-up/verify", `{"method":"code","code":"`+code+`"}`); c != http.StatusOK || ans.Status != "authenticated" {
		t.Fatalf("step-up/verify on the replica that did not send the code: %d %+v", c, ans)
	}
}

// sendCode has replica i send a login code and returns it.
func (p *person) sendCode(i int) string {
	t := p.c.t
	t.Helper()
	if c, ans := p.api(i, "step-up/send", `{"method":"sms"}`); c != http.StatusOK || ans.Status != "code_sent" {
		t.Fatalf("step-up/send on replica %d: %d %+v", i, c, ans)
	}
	msg, err := outbox.Last(p.c.outbox, outbox.Filter{Purpose: notify.PurposeLogin, Channel: notify.SMS})
	if err != nil {
		t.Fatal(err)
	}
	code, _, _ := strings.Cut(msg.Text, " ")
	return code
}

// refusedWithin polls path on replica i until the gateway no longer lets
// the session through (it sends the person to sign in), for at most limit,
// and returns how long that took.
func (p *person) refusedWithin(i int, path string, limit time.Duration, since time.Time) time.Duration {
	t := p.c.t
	t.Helper()
	deadline := since.Add(limit)
	for {
		code := p.get(i, path)
		if code == http.StatusFound || code == http.StatusUnauthorized {
			return time.Since(since)
		}
		if code != http.StatusOK {
			t.Fatalf("GET %s on replica %d: %d, want 200 or a refusal", path, i, code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %d still let the ended session through %v after it ended", i, time.Since(since))
		}
	}
}

// clearAddressCounts deletes the client address's failure counters, so
// that one scenario's wrong passwords do not throttle the next.
func (c *cluster) clearAddressCounts() {
	c.t.Helper()
	if keys := redistest.Keys(c.t, c.rc, c.prefix+"hits:*"); len(keys) > 0 {
		if err := c.rc.Del(c.ctx, keys...).Err(); err != nil {
			c.t.Fatal(err)
		}
	}
}

func TestReplicas(t *testing.T) {
	c := startCluster(t)

	t.Run("a code sent by one replica is taken by the other, once", func(t *testing.T) {
		p := c.person()
		if code, ans := p.api(0, "login", `{"username":"alice","password":"wonderland-demo-42"}`); code != http.StatusForbidden || ans.Status != "step_up_required" {
			t.Fatalf("login: %d %+v", code, ans)
		}
		code := p.sendCode(0)
		if st, ans := p.api(1, "step-up/verify", `{"method":"code","code":"`+code+`"}`); st != http.StatusOK || ans.Status != "authenticated" {
			t.Fatalf("verify on the other replica: %d %+v", st, ans)
		}
		// The same code again, on either replica, is refused.
		for i := range 2 {
			if st, ans := p.api(i, "step-up/verify", `{"method":"code","code":"`+code+`"}`); st == http.StatusOK || ans.Status == "authenticated" {
				t.Fatalf("the code used again on replica %d: %d %+v", i, st, ans)
			}
		}
		if n := p.get(1, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts on replica 1: %d", n)
		}
	})

	t.Run("logout on one replica is refused on the other within a second", func(t *testing.T) {
		p := c.person()
		p.signIn()
		if n := p.get(1, "/accounts"); n != http.StatusOK { // cached on replica 1
			t.Fatalf("GET /accounts: %d", n)
		}
		// The cookie is kept to be replayed after the logout clears it.
		cookies := p.client.Jar.Cookies(mustURL(t, c.site))
		if st, ans := p.api(0, "logout", `{}`); st != http.StatusOK {
			t.Fatalf("logout: %d %+v", st, ans)
		}
		ended := time.Now()
		p.client.Jar.SetCookies(mustURL(t, c.site), cookies)
		t.Logf("replica 1 refused the logged-out session after %v", p.refusedWithin(1, "/accounts", time.Second, ended))
	})

	t.Run("an administrator's revocation on one replica is refused on the other within a second", func(t *testing.T) {
		// The admin API of replica 0 revokes; replica 1 had the session
		// cached.
		p := c.person()
		p.signIn()
		if n := p.get(1, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts: %d", n)
		}
		if st := c.admin(0, http.MethodDelete, "users/alice/sessions"); st != http.StatusOK {
			t.Fatalf("admin DELETE users/alice/sessions: %d", st)
		}
		t.Logf("replica 1 refused the revoked session after %v", p.refusedWithin(1, "/accounts", time.Second, time.Now()))
	})

	t.Run("removing a device on one replica ends its session on the other within a second", func(t *testing.T) {
		// The device: signed in, registered, its session cached on
		// replica 1.
		device := c.person()
		if st, ans := device.api(0, "login", `{"username":"alice","password":"wonderland-demo-42"}`); st != http.StatusForbidden || ans.Status != "step_up_required" {
			t.Fatalf("login: %d %+v", st, ans)
		}
		code := device.sendCode(1)
		if st, ans := device.api(0, "step-up/verify", `{"method":"code","code":"`+code+`","remember_device":true}`); st != http.StatusOK || !ans.DeviceRegistered {
			t.Fatalf("verify with remember_device: %d %+v", st, ans)
		}
		if n := device.get(1, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts: %d", n)
		}
		// Alice is signed in on two other browsers; from one of them she
		// removes the device in her settings on replica 0.
		other := c.person()
		other.signIn()
		if n := other.get(1, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts: %d", n)
		}
		owner := c.person()
		owner.signIn()
		owner.to.Store(0)
		resp, err := owner.client.Get(owner.site + "/.portcullis/api/v1/devices")
		if err != nil {
			t.Fatal(err)
		}
		var list struct{ Devices []struct{ ID string } }
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil || len(list.Devices) == 0 {
			t.Fatalf("devices: %d %+v %v", resp.StatusCode, list, err)
		}
		id := list.Devices[0].ID
		if st, ans := owner.api(0, "devices/remove", `{"id":"`+id+`"}`); st != http.StatusOK || ans.Status != "removed" {
			t.Fatalf("remove the device: %d %+v", st, ans)
		}
		removed := time.Now()
		t.Logf("replica 1 refused the removed device's session after %v", device.refusedWithin(1, "/accounts", time.Second, removed))
		// What was not signed in from the device goes on.
		if n := owner.get(1, "/accounts"); n != http.StatusOK {
			t.Errorf("the session that removed the device, on replica 1: %d, want 200", n)
		}
		if n := other.get(1, "/accounts"); n != http.StatusOK {
			t.Errorf("alice's session on a third browser, on replica 1: %d, want 200", n)
		}
	})

	t.Run("wrong passwords alternating between replicas lock at exactly five", func(t *testing.T) {
		c.clearAddressCounts()
		p := c.person()
		for n := 1; n <= 5; n++ {
			if st, ans := p.api(n%2, "login", `{"username":"bob","password":"not-his-password"}`); st != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %d %+v", n, st, ans)
			}
			bob, err := c.apps[0].store.UserByName(c.ctx, "bob")
			if err != nil {
				t.Fatal(err)
			}
			if bob.FailedLogins != n || bob.Locked != (n == 5) {
				t.Fatalf("after %d wrong passwords: failures = %d, locked = %v", n, bob.FailedLogins, bob.Locked)
			}
		}
		if st, ans := p.api(0, "login", `{"username":"bob","password":"counting-house-42"}`); st == http.StatusOK || ans.Status == "authenticated" ||
			ans.Status == "step_up_required" {
			t.Fatalf("the right password of a locked profile: %d %+v", st, ans)
		}
	})

	t.Run("fifty concurrent wrong passwords across both replicas lose no count", func(t *testing.T) {
		c.clearAddressCounts()
		const attempts = 50
		var wg sync.WaitGroup
		reasons := make([]string, attempts)
		for i := range attempts {
			wg.Go(func() {
				p := c.person()
				p.to.Store(int32(i % 2))
				resp, err := p.client.Post(c.site+"/.portcullis/api/v1/login", "application/json",
					strings.NewReader(`{"username":"carol","password":"not-her-password"}`))
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				var ans demoAnswer
				json.NewDecoder(resp.Body).Decode(&ans)
				reasons[i] = strconv.Itoa(resp.StatusCode) + " " + ans.Reason
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					// Only busy hashing slots may refuse here, with a
					// Retry-After; a 503 without one is a store failure.
					t.Errorf("attempt %d: 503 without Retry-After (%+v)", i, ans)
				}
			})
		}
		wg.Wait()
		counts := map[string]int{}
		for _, r := range reasons {
			counts[r]++
		}
		t.Logf("answers: %v", counts)
		carol, err := c.apps[1].store.UserByName(c.ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		// Every attempt the policy let reach the password check answers
		// bad_credentials and counted one failure; the others were
		// throttled for the address before it, or found every hashing
		// slot busy (503 with Retry-After, not judged, not counted).
		checked := counts["401 bad_credentials"]
		if carol.FailedLogins != checked {
			t.Errorf("stored failures = %d, attempts that reached the password check = %d", carol.FailedLogins, checked)
		}
		if !carol.Locked || checked < 5 {
			t.Errorf("after %d wrong passwords checked: locked = %v", checked, carol.Locked)
		}
		locks := 0
		for _, line := range strings.Split(c.logs[0].String()+c.logs[1].String(), "\n") {
			if strings.Contains(line, "profile locked") && strings.Contains(line, "user_id="+carol.ID) {
				locks++
			}
		}
		if got := locks; got != 1 {
			t.Errorf("the profile was locked %d times, want once", got)
		}
	})
}

// eventually polls f until it returns true, for at most limit.
func eventually(t *testing.T, limit time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestReplicaFaults cuts one replica's link to PostgreSQL, then to Redis,
// then both, and restores them: while cut, what needs the store fails
// closed with a 503 and the gateway keeps running; with one link left its
// cached sessions are still served and ended ones still refused (the
// invalidations come over the other), with none the cache is not used;
// afterwards it serves again by itself, and no count or code was lost or
// counted twice.
func TestReplicaFaults(t *testing.T) {
	c := startCluster(t)
	p := c.person()
	p.signIn()
	if n := p.get(0, "/accounts"); n != http.StatusOK { // cached on replica 0
		t.Fatalf("GET /accounts: %d", n)
	}
	wrong := func(i int) (int, demoAnswer) {
		return c.person().api(i, "login", `{"username":"bob","password":"not-his-password"}`)
	}
	failures := func() int {
		bob, err := c.apps[1].store.UserByName(c.ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		return bob.FailedLogins
	}
	if st, _ := wrong(0); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}

	t.Run("PostgreSQL cut", func(t *testing.T) {
		c.pg[0].Cut()
		if st, ans := wrong(0); st != http.StatusServiceUnavailable {
			t.Fatalf("login with the database cut: %d %+v, want 503", st, ans)
		} else {
			t.Logf("login with the database cut: %d %+v", st, ans)
		}
		// The session cached before the cut, with its profile, keeps
		// working for the cache's lifetime: Redis and its invalidations
		// are still there.
		for range 5 {
			if n := p.get(0, "/accounts"); n != http.StatusOK {
				t.Fatalf("GET /accounts of a cached session with the database cut: %d, want 200", n)
			}
		}
		c.pg[0].Restore()
		took := eventually(t, 10*time.Second, "login after the database returned", func() bool {
			st, _ := wrong(0)
			return st == http.StatusUnauthorized
		})
		t.Logf("replica 0 signed in again %v after the database returned", took)
		if n := failures(); n != 2 {
			t.Errorf("stored failures = %d, want 2 (one before the cut, one after; none during)", n)
		}
	})

	t.Run("Redis cut", func(t *testing.T) {
		q := c.person()
		if st, ans := q.api(1, "login", `{"username":"alice","password":"wonderland-demo-42"}`); st != http.StatusForbidden || ans.Status != "step_up_required" {
			t.Fatalf("login: %d %+v", st, ans)
		}
		code := q.sendCode(1)
		if n := p.get(1, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts: %d", n)
		}
		// Two sessions read by replica 1 just before the cut, so that
		// their cache entries outlive the checks below: alice's, and
		// carol's on the car loans host, which the other replica revokes.
		fresh := c.person()
		fresh.signIn()
		carol := c.personAt(strings.Replace(c.site, "bank.localhost", "auto.localhost", 1))
		carol.signInAs("carol", "higher-further-42")
		if n := carol.get(1, "/loans"); n != http.StatusOK {
			t.Fatalf("GET /loans as carol: %d", n)
		}
		if n := fresh.get(1, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts: %d", n)
		}
		c.redis[1].Cut()
		cut := time.Now()
		// The invalidations still come over PostgreSQL: the replica
		// keeps trusting its cache, and the cached session is served for
		// the entry's lifetime rather than refused.
		for n := 0; n < 5 || time.Since(cut) < time.Second; n++ {
			if st := fresh.get(1, "/accounts"); st != http.StatusOK {
				t.Fatalf("GET /accounts of a cached session %v after Redis was cut: %d, want 200", time.Since(cut), st)
			}
		}
		if st, ans := wrong(1); st != http.StatusServiceUnavailable {
			t.Fatalf("login with Redis cut: %d %+v, want 503", st, ans)
		}
		if st, ans := q.api(1, "step-up/verify", `{"method":"code","code":"`+code+`"}`); st != http.StatusServiceUnavailable {
			t.Fatalf("code with Redis cut: %d %+v, want 503", st, ans)
		}
		// A revocation on the other replica still reaches this one at
		// once, over PostgreSQL: the cached session is no longer let
		// through (reading it anew needs Redis, so it is refused with a
		// 503 or sent to sign in).
		if st := c.admin(0, http.MethodDelete, "users/carol/sessions"); st != http.StatusOK {
			t.Fatalf("admin DELETE users/carol/sessions: %d", st)
		}
		revoked := time.Now()
		for carol.get(1, "/loans") == http.StatusOK {
			if time.Since(revoked) > time.Second {
				t.Fatal("replica 1, its Redis cut, still let a revoked session through 1s after the revocation")
			}
		}
		t.Logf("replica 1, its Redis cut, refused the revoked session after %v", time.Since(revoked))
		// The other replica is untouched.
		if n := p.get(0, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts on the other replica: %d", n)
		}
		c.redis[1].Restore()
		took := eventually(t, 10*time.Second, "the session served after Redis returned", func() bool {
			return p.get(1, "/accounts") == http.StatusOK
		})
		t.Logf("replica 1 served again %v after Redis returned", took)
		logs := c.logs[1].String()
		if !strings.Contains(logs, `msg="session invalidation channel lost: the others carry the invalidations until it is back" channel=redisstore.Store`) {
			t.Error("replica 1 did not log that it lost the Redis channel")
		}
		if strings.Contains(logs, "session invalidations lost") {
			t.Error("replica 1 stopped trusting its cache with the PostgreSQL channel up")
		}
		eventually(t, 10*time.Second, "Redis resubscribed", func() bool {
			return strings.Count(c.logs[1].String(), `msg="session invalidation channel subscribed" channel=redisstore.Store`) >= 2
		})
		if st, ans := q.api(1, "step-up/verify", `{"method":"code","code":"`+code+`"}`); st != http.StatusOK || ans.Status != "authenticated" {
			t.Fatalf("the code sent before the cut, after it: %d %+v", st, ans)
		}
		if st, ans := q.api(0, "step-up/verify", `{"method":"code","code":"`+code+`"}`); st == http.StatusOK || ans.Status == "authenticated" {
			t.Fatalf("the code used twice: %d %+v", st, ans)
		}
		if st, _ := wrong(1); st != http.StatusUnauthorized {
			t.Fatalf("wrong password after Redis returned: %d", st)
		}
		if n := failures(); n != 3 {
			t.Errorf("stored failures = %d, want 3 (none counted during the cut)", n)
		}
	})

	t.Run("PostgreSQL and Redis cut", func(t *testing.T) {
		r := c.person()
		r.signIn()
		if n := r.get(1, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts: %d", n)
		}
		c.pg[1].Cut()
		c.redis[1].Cut()
		// With no channel left the replica cannot tell what it missed:
		// it stops trusting its cache, and the session, read anew from
		// Redis, which is gone, is refused.
		took := eventually(t, 2*time.Second, "a cached session refused with every invalidation channel lost", func() bool {
			return r.get(1, "/accounts") == http.StatusServiceUnavailable
		})
		t.Logf("replica 1 stopped serving from its cache %v after both links were cut", took)
		if n := r.get(0, "/accounts"); n != http.StatusOK {
			t.Fatalf("GET /accounts on the other replica: %d", n)
		}
		if !strings.Contains(c.logs[1].String(), "session invalidations lost") {
			t.Error("replica 1 did not log that it lost the invalidations")
		}
		c.pg[1].Restore()
		c.redis[1].Restore()
		took = eventually(t, 10*time.Second, "the session served after both links returned", func() bool {
			return r.get(1, "/accounts") == http.StatusOK
		})
		t.Logf("replica 1 served again %v after both links returned", took)
		eventually(t, 10*time.Second, "resubscribed", func() bool {
			return strings.Count(c.logs[1].String(), "session invalidations subscribed") >= 2
		})
		if st, _ := wrong(1); st != http.StatusUnauthorized {
			t.Fatalf("wrong password after both links returned: %d", st)
		}
	})
	for i, logs := range c.logs {
		if strings.Contains(logs.String(), "panic") {
			t.Errorf("replica %d logged a panic", i)
		}
	}
}
