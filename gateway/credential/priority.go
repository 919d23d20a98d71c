package credential

import "runtime"

// DefaultNice is how much lower than the rest of the process hashes run
// by default (the Unix nice scale: 0 is equal, 19 the lowest).
const DefaultNice = 10

// compute runs f, the argon2id work of one hash. With a nice above zero it
// runs on an OS thread of its own whose scheduling priority is lowered by
// that much, so that when the cores are contended the kernel runs proxied
// requests (and the upstream apps on the same machine) first.
//
// A hash still holds one of the Go scheduler's processors while it runs,
// which is why MaxConcurrent stays below the core count by default: the
// processors left serve requests whatever the kernel does with the
// hashing threads. Giving hashes processors of their own (raising
// GOMAXPROCS above the cores) was measured and rejected: on two cores the
// gateway's proxied throughput fell from 0.86 to 0.54 of a bare proxy's. The thread ends with f: the
// goroutine never unlocks it, so the lowered priority never serves other
// work. Creating a thread costs microseconds against a hash's tens of
// milliseconds.
func (h *Hasher) compute(f func()) { runAtNice(h.params.Nice, f) }

// runAtNice runs f on an OS thread of its own whose priority is lowered by
// nice (see compute); with nice 0 or less, f runs on the caller's thread.
func runAtNice(nice int, f func()) {
	if nice <= 0 {
		f()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		lowerThreadPriority(nice)
		f()
	}()
	<-done
}
