package storetest

import (
	"slices"
	"sync"
	"testing"
)

// parallelism is how many goroutines the concurrency tests start at once.
const parallelism = 30

// concurrently calls f from n goroutines released together and returns what
// each call returned, in no particular order.
func concurrently[T any](n int, f func() (T, error)) ([]T, []error) {
	results := make([]T, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = f()
		})
	}
	close(start)
	wg.Wait()
	return results, errs
}

// countsOneToN checks that concurrent increments each saw a distinct new
// count, 1 to len(counts): no increment was lost or observed twice.
func countsOneToN(t *testing.T, op string, counts []int, errs []error) {
	t.Helper()
	for _, err := range errs {
		ok(t, op, err)
	}
	got := slices.Sorted(slices.Values(counts))
	for i, c := range got {
		if c != i+1 {
			t.Fatalf("%s from %d goroutines returned counts %v, want each of 1 to %d once", op, len(counts), got, len(counts))
		}
	}
}
