package gateway_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/policies"
)

// TestPasswordCheckerJudgesWithTheBlocklist: the checker the gateway builds
// refuses the configured blocklist's entries and zxcvbn's common and
// guessable passwords under the shipped rules, and accepts a passphrase.
func TestPasswordCheckerJudgesWithTheBlocklist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breached.txt")
	if err := os.WriteFile(path, []byte("Harbour-Lantern-1987\nsome other entry\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(st *setup) { st.cfg.PasswordBlocklist = path })
	checker := h.gw.PasswordChecker()
	if checker == nil || checker.Breached() != 2 {
		t.Fatalf("checker %v, want one with the 2 listed passwords", checker)
	}
	rules := h.policy.PasswordRules()
	for _, tc := range []struct {
		password, username string
		names              []string
		want               string
	}{
		{"HARBOUR-lantern-1987", "alice", nil, policies.ReasonPasswordCommon},
		{"password1234", "alice", nil, policies.ReasonPasswordCommon},
		{"Summer2024!!", "alice", nil, policies.ReasonPasswordGuessable},
		{"alice-in-the-harbour-7", "alice", nil, policies.ReasonPasswordContainsUsername},
		{"quiet-Liddell-meadow-41", "alice", []string{"Alice Liddell", "Liddell"}, policies.ReasonPasswordContainsName},
		{"plinth mantra gusty orbit", "alice", []string{"Alice Liddell"}, policies.ReasonOK},
	} {
		reason := policies.ReasonOK
		var pe *policies.PasswordError
		if err := rules.Judge(checker.Facts(tc.password, tc.username, tc.names...)); errors.As(err, &pe) {
			reason = pe.Reason
		}
		if reason != tc.want {
			t.Errorf("%q: %s, want %s", tc.password, reason, tc.want)
		}
	}
}

// TestUnreadablePasswordBlocklistStopsTheGateway: a configured blocklist
// that cannot be read is a start-up error, never a gateway without it.
func TestUnreadablePasswordBlocklistStopsTheGateway(t *testing.T) {
	h := newHarness(t)
	missing := filepath.Join(t.TempDir(), "breached.txt")
	_, err := gateway.New(gateway.Config{
		Routes:            []gateway.Route{{Name: "savings", Host: bankHost, PathPrefix: "/", Upstream: mustURL(t, h.bank.URL)}},
		Session:           gateway.SessionConfig{IdleTimeout: time.Hour, MaxLifetime: 2 * time.Hour},
		Password:          credential.Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, MaxConcurrent: 2},
		PasswordBlocklist: missing,
		AssertionTTL:      time.Minute,
	}, withParts(h.store, gateway.Deps{Signer: h.signer, Policy: h.policy, Signals: h.signals, Now: h.clock.Now}))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "blocklist") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("New with a missing blocklist: %v, want an error naming the blocklist file", err)
	}
}
