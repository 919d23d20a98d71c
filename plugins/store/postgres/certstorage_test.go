package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// certStep is one call on a certmagic.Storage, described as a string that
// two implementations can be compared by.
type certStep struct {
	name string
	do   func(ctx context.Context, s certmagic.Storage) string
}

// outcome names what an error means to certmagic: none, a missing key, the
// context's end, or a failure.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, fs.ErrNotExist):
		return "not exist"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	default:
		return "error"
	}
}

func storeStep(key, value string) certStep {
	return certStep{"Store " + key, func(ctx context.Context, s certmagic.Storage) string {
		return outcome(s.Store(ctx, key, []byte(value)))
	}}
}

func loadStep(key string) certStep {
	return certStep{"Load " + key, func(ctx context.Context, s certmagic.Storage) string {
		v, err := s.Load(ctx, key)
		return fmt.Sprintf("%s %q", outcome(err), v)
	}}
}

func existsStep(key string) certStep {
	return certStep{"Exists " + key, func(ctx context.Context, s certmagic.Storage) string {
		return strconv.FormatBool(s.Exists(ctx, key))
	}}
}

func deleteStep(key string) certStep {
	return certStep{"Delete " + key, func(ctx context.Context, s certmagic.Storage) string {
		return outcome(s.Delete(ctx, key))
	}}
}

func listStep(prefix string, recursive bool) certStep {
	return certStep{fmt.Sprintf("List %s recursive=%v", prefix, recursive), func(ctx context.Context, s certmagic.Storage) string {
		keys, err := s.List(ctx, prefix, recursive)
		return fmt.Sprintf("%s %q", outcome(err), keys)
	}}
}

// statStep describes the key; the size only of files (a directory's is the
// file system's business), and whether the modification time is of the
// test's run.
func statStep(key string, since time.Time) certStep {
	return certStep{"Stat " + key, func(ctx context.Context, s certmagic.Storage) string {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return outcome(err)
		}
		recent := !info.Modified.Before(since.Add(-2*time.Second)) && !info.Modified.After(time.Now().Add(2*time.Second))
		size := "-"
		if info.IsTerminal {
			size = strconv.FormatInt(info.Size, 10)
		}
		return fmt.Sprintf("key=%q terminal=%v size=%s recent=%v", info.Key, info.IsTerminal, size, recent)
	}}
}

func lockStep(name string, timeout time.Duration) certStep {
	return certStep{"Lock " + name, func(ctx context.Context, s certmagic.Storage) string {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return outcome(s.Lock(ctx, name))
	}}
}

func tryLockStep(name string) certStep {
	return certStep{"TryLock " + name, func(ctx context.Context, s certmagic.Storage) string {
		ok, err := s.(certmagic.TryLocker).TryLock(ctx, name)
		return fmt.Sprintf("%s %v", outcome(err), ok)
	}}
}

func unlockStep(name string) certStep {
	return certStep{"Unlock " + name, func(ctx context.Context, s certmagic.Storage) string {
		return outcome(s.Unlock(ctx, name))
	}}
}

// certSteps exercises every method the way certmagic uses them, and the
// corners of FileStorage's path semantics.
func certSteps(since time.Time) []certStep {
	const (
		crt  = "certificates/acme/example.com/example.com.crt"
		key  = "certificates/acme/example.com/example.com.key"
		meta = "certificates/acme/example.com/example.com.json"
		www  = "certificates/acme/www.example.com/www.example.com.crt"
		lock = "obtain_cert_example.com"
	)
	return []certStep{
		existsStep(""),
		listStep("certificates", false),
		loadStep(crt),
		statStep("certificates", since),
		storeStep(crt, "crt-1"),
		storeStep(key, "\x00key\xff\x00"),
		storeStep(meta, ""),
		storeStep(www, "crt-2"),
		storeStep("certificates/acme-b/x.crt", "x"),
		storeStep("ocsp/example.com-abc", "staple"),
		storeStep("acme/ca/users/ops@example.com/ops.json", "{}"),
		loadStep(crt),
		loadStep(key),
		loadStep(meta),
		loadStep(www),
		loadStep("certificates//acme/example.com/example.com.crt/"),
		loadStep("/certificates/acme/example.com/example.com.crt"),
		loadStep("certificates/./acme/example.com/example.com.crt"),
		loadStep("certificates/acme"),
		loadStep(""),
		loadStep("certificates/acme/example.com/example.co"),
		existsStep(crt),
		existsStep("certificates/acme"),
		existsStep("certificates/acme/"),
		existsStep("certificates/acm"),
		existsStep(""),
		listStep("certificates", false),
		listStep("certificates", true),
		listStep("certificates/", true),
		listStep("certificates/acme/example.com", false),
		listStep(crt, false),
		listStep(crt, true),
		listStep("", true),
		listStep("", false),
		listStep("certificates/acm", false),
		statStep(crt, since),
		statStep(key, since),
		statStep(meta, since),
		statStep("certificates/acme", since),
		statStep("", since),
		statStep("certificates/acme/example.com/missing.crt", since),
		storeStep(crt, "crt-1b"),
		loadStep(crt),
		statStep(crt, since),
		storeStep("certificates/acme", "a file where a directory is"),
		storeStep(crt+"/child", "a file under a file"),
		storeStep("", "the root"),
		loadStep("certificates/acme"),
		loadStep(crt + "/child"),
		deleteStep("certificates/acme/www.example.com"),
		existsStep(www),
		existsStep("certificates/acme/www.example.com"),
		listStep("certificates/acme", false),
		deleteStep("nothing/here"),
		deleteStep(meta),
		loadStep(meta),
		listStep("certificates/acme/example.com", false),
		deleteStep("certificates/"),
		existsStep("certificates"),
		existsStep(crt),
		listStep("", false),
		listStep("", true),
		unlockStep("never-locked"),
		lockStep(lock, 0),
		tryLockStep(lock),
		lockStep(lock, 200*time.Millisecond),
		tryLockStep("other"),
		unlockStep("other"),
		unlockStep(lock),
		unlockStep(lock),
		tryLockStep(lock),
		unlockStep(lock),
		lockStep(lock, 0),
		unlockStep(lock),
	}
}

// Every method behaves as certmagic's FileStorage does: the same steps run
// on a FileStorage in a temporary directory give the expected results, and
// CertStorage must give the same.
func TestCertStorageMatchesFileStorage(t *testing.T) {
	testDSN(t)
	ctx := t.Context()
	since := time.Now()
	steps := certSteps(since)
	files := &certmagic.FileStorage{Path: filepath.Join(t.TempDir(), "certmagic")}
	want := make([]string, len(steps))
	for i, step := range steps {
		want[i] = step.do(ctx, files)
	}
	s := openFresh(t).CertStorage()
	for i, step := range steps {
		if got := step.do(ctx, s); got != want[i] {
			t.Errorf("step %d, %s: got %s, FileStorage gives %s", i, step.name, got, want[i])
		}
	}
}

// What FileStorage gets wrong, CertStorage gets right: a ".." element is
// refused rather than leaving the storage, and a directory is gone once the
// last key under it is (FileStorage leaves empty directories behind).
func TestCertStorageKeys(t *testing.T) {
	ctx := t.Context()
	s := openFresh(t).CertStorage()
	if err := s.Store(ctx, "a/b/c", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../a/b/c", "a/../a/b/c", "a/b/c/.."} {
		if err := s.Store(ctx, key, []byte("v")); err == nil {
			t.Errorf("Store(%q) succeeded", key)
		}
		if _, err := s.Load(ctx, key); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%q): error = %v, want a refusal", key, err)
		}
		if err := s.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) succeeded", key)
		}
		if s.Exists(ctx, key) {
			t.Errorf("Exists(%q) = true", key)
		}
		if _, err := s.List(ctx, key, true); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("List(%q): error = %v, want a refusal", key, err)
		}
		if _, err := s.Stat(ctx, key); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q): error = %v, want a refusal", key, err)
		}
	}
	// Keys PostgreSQL text cannot hold name nothing stored.
	for _, key := range []string{"a/b\x00c", "a/b\xffc"} {
		if err := s.Store(ctx, key, []byte("v")); err == nil {
			t.Errorf("Store(%q) succeeded", key)
		}
		if _, err := s.Load(ctx, key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%q): error = %v, want fs.ErrNotExist", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q): error = %v, want fs.ErrNotExist", key, err)
		}
		if _, err := s.List(ctx, key, false); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("List(%q): error = %v, want fs.ErrNotExist", key, err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) = %v, want nil (nothing to delete)", key, err)
		}
		if s.Exists(ctx, key) {
			t.Errorf("Exists(%q) = true", key)
		}
	}
	if err := s.Delete(ctx, "a/b/c"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "a") {
		t.Error(`Exists("a") after deleting its last key = true`)
	}
	if _, err := s.List(ctx, "a", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(`List("a") after deleting its last key: error = %v, want fs.ErrNotExist`, err)
	}
}

// testCertStorage is a CertStorage on s with a short lease and poll, so
// that the lock tests take a moment rather than the production minute.
func testCertStorage(s *Store, lease time.Duration) *CertStorage {
	return newCertStorage(s.pool, lease, 5*time.Millisecond)
}

// Lock excludes across replicas and goroutines: each critical section reads
// a counter from the storage and writes it back incremented, and checks on
// the count its own atomic increment returned that it is alone. A lost
// update or a second holder fails the test.
func TestCertLockExcludesAcrossReplicas(t *testing.T) {
	const perReplica, rounds = 6, 5
	ctx := t.Context()
	stores := replicas(t, 2)
	storages := map[*Store]*CertStorage{}
	for _, st := range stores {
		storages[st] = testCertStorage(st, 5*time.Second)
	}
	var inside, overlaps atomic.Int32
	acrossReplicas(t, stores, perReplica, func(st *Store) (bool, error) {
		for range rounds {
			if err := criticalSection(ctx, storages[st], &inside, &overlaps); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d critical sections overlapped another", n)
	}
	v, err := stores[0].CertStorage().Load(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(len(stores) * perReplica * rounds); string(v) != want {
		t.Errorf("counter = %s after %s locked increments", v, want)
	}

	// TryLock from every goroutine of every replica at once: one wins.
	var mu sync.Mutex
	var winner *CertStorage
	wantOneTrue(t, "TryLock", acrossReplicas(t, stores, perReplica, func(st *Store) (bool, error) {
		ok, err := storages[st].TryLock(ctx, "ari_race")
		if ok {
			mu.Lock()
			winner = storages[st]
			mu.Unlock()
		}
		return ok, err
	}))
	if err := winner.Unlock(ctx, "ari_race"); err != nil {
		t.Fatal(err)
	}
}

// criticalSection increments the storage's counter under the lock.
func criticalSection(ctx context.Context, cs *CertStorage, inside, overlaps *atomic.Int32) error {
	if err := cs.Lock(ctx, "obtain_cert_counter"); err != nil {
		return err
	}
	if n := inside.Add(1); n != 1 {
		overlaps.Add(1)
	}
	n := 0
	v, err := cs.Load(ctx, "counter")
	switch {
	case err == nil:
		n, err = strconv.Atoi(string(v))
	case errors.Is(err, fs.ErrNotExist):
		err = nil
	}
	if err == nil {
		err = cs.Store(ctx, "counter", []byte(strconv.Itoa(n+1)))
	}
	inside.Add(-1)
	return errors.Join(err, cs.Unlock(ctx, "obtain_cert_counter"))
}

// A holder that vanishes without unlocking (its database connection cut,
// as when its replica crashes) keeps the lock for its lease, then another
// replica takes it over; the vanished holder's Unlock reports the loss.
func TestCertLockOfVanishedHolderIsTakenOver(t *testing.T) {
	const lease = time.Second
	ctx := t.Context()
	_, dsn := freshSchema(t)
	p := newProxy(t)
	holder := testCertStorage(openDSN(t, p.dsn(dsn)), lease)
	other := testCertStorage(openDSN(t, dsn), lease)
	if err := holder.Lock(ctx, "obtain_cert_example.com"); err != nil {
		t.Fatal(err)
	}
	if ok, err := other.TryLock(ctx, "obtain_cert_example.com"); ok || err != nil {
		t.Fatalf("TryLock while the lock is held = %v, %v; want false, nil", ok, err)
	}
	p.cutOff()
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, 10*lease)
	defer cancel()
	if err := other.Lock(waitCtx, "obtain_cert_example.com"); err != nil {
		t.Fatalf("Lock after the holder vanished: %v", err)
	}
	t.Logf("the vanished holder's lock was taken over after %s (lease %s)", time.Since(start).Round(time.Millisecond), lease)
	if err := holder.Unlock(ctx, "obtain_cert_example.com"); err == nil {
		t.Error("Unlock by the vanished holder succeeded")
	}
	if err := other.Unlock(ctx, "obtain_cert_example.com"); err != nil {
		t.Errorf("Unlock by the new holder: %v", err)
	}
}

// A Lock waiting for a holder ends with its context, with the context's
// error, whether the holder is another replica or a goroutine of the same
// process; meanwhile the holder's refreshes keep its lock past its lease.
func TestCertLockWaitEndsWithContext(t *testing.T) {
	const lease = 300 * time.Millisecond
	ctx := t.Context()
	stores := replicas(t, 2)
	holder := testCertStorage(stores[0], lease)
	if err := holder.Lock(ctx, "obtain_cert_example.com"); err != nil {
		t.Fatal(err)
	}
	for name, waiter := range map[string]*CertStorage{
		"another replica":  testCertStorage(stores[1], lease),
		"the same process": holder,
	} {
		t.Run(name, func(t *testing.T) {
			deadline, cancel := context.WithTimeout(ctx, 4*lease)
			defer cancel()
			if err := waiter.Lock(deadline, "obtain_cert_example.com"); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Lock past the deadline, %s longer than the lease: error = %v, want context.DeadlineExceeded", 4*lease, err)
			}
			cancelled, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- waiter.Lock(cancelled, "obtain_cert_example.com") }()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Lock with its context cancelled: error = %v, want context.Canceled", err)
			}
		})
	}
	if err := holder.Unlock(ctx, "obtain_cert_example.com"); err != nil {
		t.Fatalf("Unlock by the holder after the waits: %v", err)
	}
}

// Without its database every method fails, and never as a missing key,
// which certmagic would take as a certificate to obtain.
func TestCertStorageWithoutDatabaseFails(t *testing.T) {
	s := openFresh(t)
	cs := s.CertStorage()
	if err := cs.Store(t.Context(), "certificates/a/a.crt", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := cs.Lock(t.Context(), "obtain_cert_held"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"Store":  func() error { return cs.Store(ctx, "certificates/a/a.crt", []byte("w")) },
		"Load":   func() error { _, err := cs.Load(ctx, "certificates/a/a.crt"); return err },
		"Delete": func() error { return cs.Delete(ctx, "certificates/a/a.crt") },
		"List":   func() error { _, err := cs.List(ctx, "certificates", true); return err },
		"Stat":   func() error { _, err := cs.Stat(ctx, "certificates/a/a.crt"); return err },
		"Lock":   func() error { return cs.Lock(ctx, "obtain_cert_a") },
		"TryLock": func() error {
			ok, err := cs.(certmagic.TryLocker).TryLock(ctx, "obtain_cert_a")
			if ok {
				return errors.New("TryLock granted")
			}
			return err
		},
		"Unlock": func() error { return cs.Unlock(ctx, "obtain_cert_held") },
	}
	for name, call := range calls {
		err := call()
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s without a database: error = %v, want a failure other than fs.ErrNotExist", name, err)
		} else if !strings.HasPrefix(err.Error(), "postgres: cert storage: ") {
			t.Errorf("%s: error = %q, want it to name the cert storage", name, err)
		}
	}
	if cs.Exists(ctx, "certificates/a/a.crt") {
		t.Error("Exists without a database = true")
	}
	if ctx.Err() != nil {
		t.Errorf("the calls took longer than their deadline: %v", ctx.Err())
	}
}

// BenchmarkCertStorage measures what certmagic does per certificate: a
// load of one of 3,000 stored keys (a thousand certificates with their keys
// and metadata), a load of a missing key (a name with no certificate yet),
// a store, and a lock taken and released with no one else waiting.
func BenchmarkCertStorage(b *testing.B) {
	cs := openFresh(b).CertStorage()
	ctx := b.Context()
	const n = 1000
	for i := range n {
		for _, ext := range []string{"crt", "key", "json"} {
			key := fmt.Sprintf("certificates/acme/h%d.example.com/h%[1]d.example.com.%s", i, ext)
			if err := cs.Store(ctx, key, make([]byte, 2048)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("Load", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := cs.Load(ctx, fmt.Sprintf("certificates/acme/h%d.example.com/h%[1]d.example.com.crt", i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LoadMissing", func(b *testing.B) {
		for b.Loop() {
			if _, err := cs.Load(ctx, "certificates/acme/new.example.com/new.example.com.crt"); !errors.Is(err, fs.ErrNotExist) {
				b.Fatal(err)
			}
		}
	})
	b.Run("Store", func(b *testing.B) {
		for b.Loop() {
			if err := cs.Store(ctx, "certificates/acme/h0.example.com/h0.example.com.json", []byte("{}")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LockUnlock", func(b *testing.B) {
		for b.Loop() {
			if err := cs.Lock(ctx, "obtain_cert_h0.example.com"); err != nil {
				b.Fatal(err)
			}
			if err := cs.Unlock(ctx, "obtain_cert_h0.example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
