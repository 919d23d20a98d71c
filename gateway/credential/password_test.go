package credential

import (
	"context"
	"crypto/rand"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

func testHasher(t testing.TB) *Hasher {
	t.Helper()
	h, err := NewHasher(Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, MaxConcurrent: 2}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHasher(t *testing.T) {
	ctx := t.Context()
	h := testHasher(t)
	hash, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id with the configured parameters", hash)
	}
	again, _ := h.Hash(ctx, "correct horse battery")
	if again == hash {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for _, tc := range []struct {
		name, hash, password string
		want                 bool
	}{
		{"right", hash, "correct horse battery", true},
		{"wrong", hash, "correct horse batterY", false},
		{"empty password", hash, "", false},
		{"unknown user uses the dummy", "", "correct horse battery", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, tc.hash, tc.password)
			if err != nil || ok != tc.want {
				t.Fatalf("Verify = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"$argon2id$v=19$m=1,t=1$x$y", "$bcrypt$...", "$argon2id$v=19$m=8192,t=1,p=1$!!$!!", "$argon2id$v=16$m=8192,t=1,p=1$c2FsdA$a2V5"} {
		if _, err := h.Verify(ctx, bad, "x"); err == nil {
			t.Errorf("Verify(%q) accepted a malformed hash", bad)
		}
	}
	if h.NeedsRehash(hash) {
		t.Error("fresh hash needs rehash")
	}
	strong, _ := NewHasher(Params{MemoryKiB: 16 * 1024, Time: 1, Threads: 1, MaxConcurrent: 1}, rand.Reader)
	if !strong.NeedsRehash(hash) {
		t.Error("weaker hash does not need rehash under stronger parameters")
	}
}

func TestHasherRespectsCancellation(t *testing.T) {
	h, err := NewHasher(Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, MaxConcurrent: 1}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h.slots <- struct{}{} // every slot busy
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Verify(ctx, "", "x"); err == nil {
		t.Fatal("Verify with no free slot and a cancelled context did not fail")
	}
}

func TestNewHasherRefusesWeakParameters(t *testing.T) {
	if _, err := NewHasher(Params{MemoryKiB: 1024, Time: 1, Threads: 1, MaxConcurrent: 1}, rand.Reader); err == nil {
		t.Fatal("1 MiB accepted")
	}
	if _, err := NewHasher(Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}, rand.Reader); err == nil {
		t.Fatal("zero concurrency accepted")
	}
}

// With every slot taken, a hash waits at most QueueTimeout and then fails
// with ErrBusy; a slot freed in time is taken.
func TestHasherQueueHasADeadline(t *testing.T) {
	h, err := NewHasher(Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := h.Verify(t.Context(), "", "password"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify with every slot taken: %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("waited %v for a 50ms queue deadline", waited)
	}
	go func() { time.Sleep(10 * time.Millisecond); h.release() }()
	if _, err := h.Verify(t.Context(), "", "password"); err != nil {
		t.Fatalf("Verify once a slot is freed: %v", err)
	}
	if _, err := NewHasher(Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, MaxConcurrent: 1, QueueTimeout: -time.Second}, rand.Reader); err == nil {
		t.Fatal("a negative queue timeout was accepted")
	}
}

func TestDefaultHashingLeavesProxyingACore(t *testing.T) {
	p := DefaultParams()
	if p.MaxConcurrent < 1 || runtime.NumCPU() > 1 && p.MaxConcurrent >= runtime.NumCPU() {
		t.Errorf("MaxConcurrent %d on %d cores", p.MaxConcurrent, runtime.NumCPU())
	}
	if p.Nice <= 0 {
		t.Errorf("hashing runs at nice %d by default, want a lower priority than proxying", p.Nice)
	}
}
