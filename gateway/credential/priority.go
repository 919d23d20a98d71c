package credential

import (
	"runtime"
	"sync"
)

// DefaultNice is how much lower than the rest of the process hashes run
// by default (the Unix nice scale: 0 is equal, 19 the lowest).
const DefaultNice = 10

// compute runs f, the argon2id work of one hash. With a nice above zero it
// runs on an OS thread of its own whose scheduling priority is lowered by
// that much, so that when the cores are contended the kernel runs proxied
// requests first and a burst of sign-ins takes only idle time; when they
// are not, hashing still gets every idle core. The thread ends with f: the
// goroutine never unlocks it, so the lowered priority never serves other
// work. Creating a thread costs microseconds against a hash's tens of
// milliseconds.
func (h *Hasher) compute(f func()) {
	if h.params.Nice <= 0 {
		f()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		lowerThreadPriority(h.params.Nice)
		f()
	}()
	<-done
}

// ReserveProcs raises GOMAXPROCS by p.MaxConcurrent when hashes run at a
// lower priority, and returns the new value (the old one otherwise). A
// hash holds one of the Go scheduler's processors while it runs; without
// processors of their own, hashes that the kernel holds back would keep
// proxied requests from running at all, and the lower priority would turn
// into a stall. The command that serves calls it at start-up; calling it
// again sets the value anew from the one the process started with.
func ReserveProcs(p Params) int {
	baseOnce.Do(func() { baseProcs = runtime.GOMAXPROCS(0) })
	procs := baseProcs
	if p.Nice > 0 {
		procs += p.MaxConcurrent
	}
	runtime.GOMAXPROCS(procs)
	return procs
}

var (
	baseOnce  sync.Once
	baseProcs int
)
