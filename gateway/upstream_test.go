package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Each route's upstream responses reach its observer with their status, an
// unreachable upstream as status 0, and nothing for a request the gateway
// answered itself.
func TestUpstreamResponsesAreObserved(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	observe := func(route string) func(int, time.Duration) {
		return func(status int, took time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if took <= 0 {
				t.Errorf("%s: response observed without its time", route)
			}
			seen = append(seen, fmt.Sprintf("%s %d", route, status))
		}
	}
	h := newHarness(t, func(s *setup) { s.upstreamObserver = observe })
	b := h.client(true)
	b.mustLogin(bankHost)
	if resp := b.get(bankHost, "/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b.get(bankHost, "/.portcullis/login") // the gateway's own page: no upstream
	h.bank.Close()
	if resp := b.get(bankHost, "/whoami"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d with the upstream down, want 502", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"savings 200", "savings 0"}; !slices.Equal(seen, want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
}
