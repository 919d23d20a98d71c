package stepup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// verifyTOTP checks an authenticator-app code for the pending step-up. The
// try is counted (on the pending step-up's record) before the code is
// compared, and the verify_code point
// judges it as a code sent just now with that many tries before it: the
// same limit of tries as a texted code. A code is accepted once per
// account: the time step it matched must be later than the last one
// accepted (the store's compare-and-set), so a replay within its 90 seconds
// is refused as a wrong code.
func (s *Room) verifyTOTP(w http.ResponseWriter, r *http.Request, p session.Pending, u store.User, typed string, remember bool) (verified, error) {
	ctx := r.Context()
	if !p.Offers("totp") {
		return verified{}, web.BadRequest(fmt.Errorf("step-up verify: totp is not offered"))
	}
	now := s.Now()
	tries, err := s.tryPending(ctx, p, now)
	if err != nil {
		return verified{}, err
	}
	ok, err := s.matchTOTP(ctx, u.ID, typed, now)
	if err != nil {
		return verified{}, web.Unavailable(err)
	}
	ip := s.Site.ClientIP(r)
	acct, err := s.account(ctx, u)
	if err != nil {
		return verified{}, web.Unavailable(err)
	}
	release, err := s.reserveFailure(ctx, u.ID, &acct, now)
	if err != nil {
		return verified{}, err
	}
	if ok {
		release()
	}
	in := policies.Input{Point: policies.PointVerifyCode, Now: now.Unix(),
		Client: s.Facts.Client(ctx, ip), Account: acct, Request: requestFacts(r),
		Code:    &policies.Code{Purpose: policyPurpose(p), Channel: "totp", SentAt: now.Unix(), Attempts: tries - 1},
		Attempt: policies.CodeAttempt(ok)}
	d := s.Policy.Decide(ctx, in)
	if d.CountIPFailure {
		if _, err := s.Hits.AddHit(ctx, facts.IPFailureKey(ip), s.Policy.IPFailureWindow(), now); err != nil {
			return verified{}, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
		}
	}
	if d, err = s.settle(ctx, in, d, u, "totp"); err != nil {
		return verified{}, err
	}
	if !d.Allow {
		s.Log.InfoContext(ctx, "step-up refused", "user_id", u.ID, "method", "totp", "reason", d.Reason, "policy_rev", d.Revision)
		return verified{}, s.Site.Denial(d)
	}
	return s.complete(w, r, p, u, "totp", d, remember)
}

// tryPending counts one try on the pending step-up's own record, before the
// try is judged, and returns the tries so far, this one included: the limit
// of tries of a method without a record of its own (an authenticator code,
// a challenge answer) holds under concurrent guesses.
func (s *Room) tryPending(ctx context.Context, p session.Pending, now time.Time) (int, error) {
	rec, err := s.Records.AttemptRecord(ctx, session.KindPending, p.ID, now)
	if errors.Is(err, store.ErrNotFound) {
		return 0, errNoPending()
	} else if err != nil {
		return 0, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
	}
	return rec.Attempts, nil
}

// matchTOTP reports whether code is a current code of one of the user's
// authenticator apps that has not been accepted before.
func (s *Room) matchTOTP(ctx context.Context, userID, code string, now time.Time) (bool, error) {
	fs, err := s.Users.FactorsOf(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("step-up verify: %w", err)
	}
	for _, f := range fs {
		if f.Kind != "totp" {
			continue
		}
		step, ok := credential.CheckTOTP(f.Secret, code, now)
		if !ok {
			continue
		}
		fresh, err := s.Users.AdvanceFactor(ctx, userID, f.ID, step, now)
		if err != nil {
			return false, fmt.Errorf("step-up verify: %w", err)
		}
		if fresh {
			return true, nil
		}
		s.Log.InfoContext(ctx, "authenticator code replayed", "user_id", userID)
	}
	return false, nil
}
