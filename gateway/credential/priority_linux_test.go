package credential

import (
	"crypto/rand"
	"runtime"
	"sync"
	"testing"
)

// TestHashesRunAtTheLowerPriority checks that the argon2id work runs on a
// thread at the configured nice value, and that neither the caller's
// thread nor threads started meanwhile (which Linux would clone from the
// hashing thread, priority included, were the runtime to start them
// there) are lowered.
func TestHashesRunAtTheLowerPriority(t *testing.T) {
	p := DefaultParams()
	p.MemoryKiB, p.Nice = 8*1024, 7
	h, err := NewHasher(p, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	base := lockedNice(t)
	if base != 0 {
		t.Skipf("the test process runs at nice %d", base)
	}
	var inside int
	others := make([]int, 8)
	h.compute(func() {
		if inside, err = threadNice(); err != nil {
			t.Error(err)
		}
		var wg sync.WaitGroup
		for i := range others {
			wg.Go(func() { others[i] = lockedNice(t) })
		}
		wg.Wait()
	})
	if inside != 7 {
		t.Errorf("hash ran at nice %d, want 7", inside)
	}
	for i, n := range others {
		if n != 0 {
			t.Errorf("goroutine %d started during a hash ran at nice %d, want 0", i, n)
		}
	}
	if n := lockedNice(t); n != 0 {
		t.Errorf("after the hash a thread runs at nice %d, want 0", n)
	}

	p.Nice = 0
	h, err = NewHasher(p, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h.compute(func() { inside, err = threadNice() })
	if err != nil || inside != 0 {
		t.Errorf("with nice 0 the hash ran at nice %d (%v), want 0", inside, err)
	}
}

// lockedNice returns the nice value of a thread the goroutine holds.
func lockedNice(t *testing.T) int {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNiceOutOfRangeIsRefused(t *testing.T) {
	for _, nice := range []int{-1, 20} {
		p := DefaultParams()
		p.Nice = nice
		if _, err := NewHasher(p, rand.Reader); err == nil {
			t.Errorf("NewHasher with nice %d: no error", nice)
		}
	}
}
