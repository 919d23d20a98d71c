package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingStore counts the failures the gateway adds, whatever the store
// answers, so a test can compare them with what the store kept.
type countingStore struct {
	allStore
	failures *atomic.Int64
}

func (c countingStore) AddLoginFailure(ctx context.Context, id string) (int, error) {
	c.failures.Add(1)
	return c.allStore.AddLoginFailure(ctx, id)
}

func withFailureCount(n *atomic.Int64) option {
	return func(s *setup) {
		s.wrapStore = func(st allStore) allStore { return countingStore{st, n} }
	}
}

// lockedBuffer is an io.Writer that concurrent decision log writes may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// decisions counts the logged decisions at a point.
func (b *lockedBuffer) decisions(t *testing.T, point string) int {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Portcullis struct {
				Point string `json:"point"`
			} `json:"portcullis"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("decision log line: %v", err)
		}
		if line.Portcullis.Point == point {
			n++
		}
	}
	return n
}

// withLooseThrottle raises the per-address throttle out of the way, so a
// test from one address exercises the account lockout alone.
func withLooseThrottle(t *testing.T) option {
	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["throttle"].(map[string]any)["max_ip_failures"] = 1000
		})
	})
	return opt
}

// burst sends n logins at once, spread over the harnesses, and returns the
// answers' reasons (or status) by count.
func burst(t *testing.T, hs []*harness, n int, username func(i int) string, password string) map[string]int {
	t.Helper()
	return burstLogins(t, hs, n, username, func(int) string { return password })
}

// burstPasswords sends alice's logins with the given passwords at once.
func burstPasswords(t *testing.T, hs []*harness, passwords []string) map[string]int {
	t.Helper()
	return burstLogins(t, hs, len(passwords), func(int) string { return "alice" }, func(i int) string { return passwords[i] })
}

func burstLogins(t *testing.T, hs []*harness, n int, username, password func(i int) string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		h := hs[i%len(hs)]
		c := h.client(false)
		wg.Go(func() {
			body, _ := json.Marshal(map[string]string{"username": username(i), "password": password(i)})
			req, _ := http.NewRequest(http.MethodPost, h.url(bankHost, "/.portcullis/api/v1/login"), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := c.Do(req)
			key := ""
			if err != nil {
				key = "error: " + err.Error()
			} else {
				var a apiAnswer
				json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				key = a.Reason
				if key == "" {
					key = fmt.Sprintf("status %d", resp.StatusCode)
				}
			}
			mu.Lock()
			got[key]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return got
}

// checkLockedAfterBurst checks the account after a burst of wrong passwords:
// locked, the right password refused, and every failure the gateway counted
// kept by the store.
func checkLockedAfterBurst(t *testing.T, hs []*harness, counted *atomic.Int64, answers map[string]int) {
	t.Helper()
	for reason := range answers {
		if reason != "bad_credentials" {
			t.Fatalf("a wrong password answered %q: %v", reason, answers)
		}
	}
	u, err := hs[0].store.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Locked {
		t.Fatalf("after %v the profile is unlocked with %d failures", answers, u.FailedLogins)
	}
	if int64(u.FailedLogins) != counted.Load() || u.FailedLogins < 5 {
		t.Fatalf("store kept %d failures, the gateway counted %d (want equal, at least 5)", u.FailedLogins, counted.Load())
	}
	for _, h := range hs {
		resp, a := h.client(true).apiLogin(bankHost, "alice", alicePassword)
		if resp.StatusCode != http.StatusForbidden || a.Reason != "account_locked" {
			t.Fatalf("right password after the burst: %d %+v", resp.StatusCode, a)
		}
	}
	if u2, _ := hs[0].store.UserByName(t.Context(), "alice"); u2.FailedLogins != u.FailedLogins || !u2.Locked {
		t.Fatalf("the refused right password changed the profile: %d failures, locked %v", u2.FailedLogins, u2.Locked)
	}
}

func TestParallelWrongPasswordsLock(t *testing.T) {
	var counted atomic.Int64
	h := newHarness(t, withLooseThrottle(t), withFailureCount(&counted))
	answers := burst(t, []*harness{h}, 50, func(int) string { return "alice" }, "wrong-password-x")
	checkLockedAfterBurst(t, []*harness{h}, &counted, answers)
}

func TestParallelWrongPasswordsLockAcrossInstances(t *testing.T) {
	// Two gateways share one SQLite file, as two processes on one host
	// would; the lock holds whichever instance a guess reaches.
	path := filepath.Join(t.TempDir(), "shared.db")
	var counted atomic.Int64
	a := newHarness(t, withSharedStore(path), withLooseThrottle(t), withFailureCount(&counted))
	b := newHarness(t, withSharedStore(path), withLooseThrottle(t), withFailureCount(&counted))
	hs := []*harness{a, b}
	answers := burst(t, hs, 50, func(int) string { return "alice" }, "wrong-password-x")
	checkLockedAfterBurst(t, hs, &counted, answers)
}

func TestRightPasswordRacingTheLockingFailureIsRefused(t *testing.T) {
	// Four failures, then the fifth wrong password and the right one at
	// once, many times over. Whichever lands first, a profile that ends
	// locked must not have let the right password in: either the fifth
	// failure counted first and the right password is refused, or the
	// right password reset the count first and the profile stays unlocked.
	for round := range 8 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			h := newHarness(t, withLooseThrottle(t))
			b := h.client(true)
			for i := range 4 {
				if _, a := b.apiLogin(bankHost, "alice", fmt.Sprint("wrong-password-", i)); a.Reason != "bad_credentials" {
					t.Fatalf("attempt %d: %+v", i+1, a)
				}
			}
			answers := burstPasswords(t, []*harness{h}, []string{"wrong-password-5", alicePassword})
			u, err := h.store.UserByName(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			signedIn := answers["status 200"] == 1
			if signedIn && u.Locked {
				t.Fatalf("the right password signed in and the profile ended locked (%d failures): %v", u.FailedLogins, answers)
			}
			if !signedIn && (answers["account_locked"] != 1 || !u.Locked) {
				t.Fatalf("the right password was refused without a lock: %v, locked %v", answers, u.Locked)
			}
		})
	}
}

func TestParallelGuessesFromOneAddressStopAtTheThrottle(t *testing.T) {
	log := &lockedBuffer{}
	h := newHarness(t, withDecisionLog(log))
	answers := burst(t, []*harness{h}, 50, func(i int) string { return fmt.Sprint("nobody-", i) }, "guess-password-1")
	if answers["bad_credentials"] != 20 || answers["ip_throttled"] != 30 {
		t.Fatalf("50 parallel guesses from one address (limit 20) answered %v, want 20 bad_credentials and 30 ip_throttled", answers)
	}
	if n := log.decisions(t, "login_password"); n != 20 {
		t.Fatalf("%d guesses reached the password check, want 20", n)
	}
	// The refused attempts took no place in the count: after the window
	// the address starts from zero, and meanwhile it stays at the limit.
	if _, a := h.client(false).apiLogin(bankHost, "alice", alicePassword); a.Reason != "ip_throttled" {
		t.Fatalf("after the burst: %+v", a)
	}
}

// A burst of sign-ins larger than the hashing slots can serve in their
// queue deadline is answered 503 with Retry-After, never queued without
// end; the attempts turned away are not judged, so they count neither
// against a profile nor against the address.
func TestBusyHashingAnswersRetryAfter(t *testing.T) {
	h := newHarness(t, func(s *setup) {
		s.cfg.Password.MaxConcurrent = 1
		s.cfg.Password.QueueTimeout = time.Millisecond
	})
	var mu sync.Mutex
	statuses := map[int]int{}
	retryAfter := true
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			resp, _ := h.client(true).apiLogin(bankHost, "nobody", "not-a-password")
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "2" {
				retryAfter = false
			}
		})
	}
	wg.Wait()
	t.Logf("30 concurrent sign-ins, one hashing slot: %v", statuses)
	judged := statuses[http.StatusUnauthorized]
	if statuses[http.StatusServiceUnavailable] == 0 || judged == 0 || !retryAfter {
		t.Fatalf("statuses %v (Retry-After on every 503: %v), want some 401s and some 503s with Retry-After: 2", statuses, retryAfter)
	}
	// The address's count holds the judged failures only: with fewer than
	// the throttle's 20 of them, the right password signs in.
	if judged < 20 {
		if resp, a := h.client(true).apiLogin(bankHost, "alice", alicePassword); resp.StatusCode != http.StatusOK {
			t.Fatalf("the right password after %d judged failures and %d turned away: %d %+v",
				judged, statuses[http.StatusServiceUnavailable], resp.StatusCode, a)
		}
	}
}
