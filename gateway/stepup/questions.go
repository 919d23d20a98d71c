package stepup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// questionsFactor returns the user's challenge questions, false when they
// set none.
func (s *Room) questionsFactor(ctx context.Context, userID string) (store.Factor, bool, error) {
	fs, err := s.Users.FactorsOf(ctx, userID)
	if err != nil {
		return store.Factor{}, false, err
	}
	for _, f := range fs {
		if f.Kind == "questions" {
			return f, true, nil
		}
	}
	return store.Factor{}, false, nil
}

// askedQuestion is the question a pending step-up asks: one of those the
// person answered, the same one for as long as the step-up lasts (chosen
// from the pending step-up's ID), so that asking again does not let someone
// shop for the question they know.
func askedQuestion(f store.Factor, p session.Pending) (credential.Question, error) {
	sum := sha256.Sum256([]byte("question\x00" + p.ID))
	id, err := credential.AskedQuestion(f.Secret, bytes.NewReader(sum[:]))
	if err != nil {
		return credential.Question{}, err
	}
	for _, q := range credential.Questions() {
		if q.ID == id {
			return q, nil
		}
	}
	return credential.Question{}, fmt.Errorf("question %q is not in the list", id)
}

// apiQuestion answers the challenge question of the pending step-up.
func (s *Room) apiQuestion(w http.ResponseWriter, r *http.Request) error {
	p, u, err := s.pending(r)
	if err != nil {
		return err
	}
	if !p.Offers("questions") {
		return web.BadRequest(errors.New("step-up question: questions are not offered"))
	}
	f, ok, err := s.questionsFactor(r.Context(), u.ID)
	if err != nil || !ok {
		return web.Unavailable(fmt.Errorf("step-up question: %v", err))
	}
	q, err := askedQuestion(f, p)
	if err != nil {
		return web.Unavailable(err)
	}
	web.WriteJSON(w, http.StatusOK, struct {
		Status     string `json:"status"`
		QuestionID string `json:"question_id"`
		Question   string `json:"question"`
	}{"answer_question", q.ID, q.Text})
	return nil
}

// verifyQuestion checks the answer to the pending step-up's question. Tries
// are counted on the pending record before the answer is compared, and
// judged by verify_code like a code's; a wrong answer also counts toward the
// profile's lockout exactly as a wrong password does (the login_password
// point decides the count and the lock).
func (s *Room) verifyQuestion(w http.ResponseWriter, r *http.Request, p session.Pending, u store.User, answer string, remember bool) (verified, error) {
	ctx := r.Context()
	if !p.Offers("questions") {
		return verified{}, web.BadRequest(errors.New("step-up verify: questions are not offered"))
	}
	now := s.Now()
	tries, err := s.tryPending(ctx, p, now)
	if err != nil {
		return verified{}, err
	}
	f, ok, err := s.questionsFactor(ctx, u.ID)
	if err != nil || !ok {
		return verified{}, web.Unavailable(fmt.Errorf("step-up verify: questions: %v", err))
	}
	q, err := askedQuestion(f, p)
	if err != nil {
		return verified{}, web.Unavailable(err)
	}
	right, err := credential.CheckAnswer(ctx, s.Hasher, f.Secret, q.ID, answer)
	if err != nil {
		return verified{}, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
	}
	ip := s.Site.ClientIP(r)
	client := s.Facts.Client(ctx, ip)
	acct, err := s.account(ctx, u)
	if err != nil {
		return verified{}, web.Unavailable(err)
	}
	release, err := s.reserveFailure(ctx, u.ID, &acct, now)
	if err != nil {
		return verified{}, err
	}
	if right {
		release()
	} else {
		if err := s.countWrongAnswer(ctx, client, acct, u, r); err != nil {
			return verified{}, err
		}
	}
	in := policies.Input{Point: policies.PointVerifyCode, Now: now.Unix(), Client: client,
		Account: acct, Request: requestFacts(r),
		Code:    &policies.Code{Purpose: policyPurpose(p), Channel: "questions", SentAt: now.Unix(), Attempts: tries - 1},
		Attempt: policies.CodeAttempt(right)}
	d := s.Policy.Decide(ctx, in)
	if d.CountIPFailure && !client.IPUnknown {
		if _, err := s.Hits.AddHit(ctx, facts.IPFailureKey(ip), s.Policy.IPFailureWindow(), now); err != nil {
			return verified{}, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
		}
	}
	if d, err = s.settle(ctx, in, d, u, "questions"); err != nil {
		return verified{}, err
	}
	if !d.Allow {
		s.Log.InfoContext(ctx, "step-up refused", "user_id", u.ID, "method", "questions", "reason", d.Reason, "policy_rev", d.Revision)
		return verified{}, s.Site.Denial(d)
	}
	return s.complete(w, r, p, u, "questions", d, remember)
}

// countWrongAnswer counts a wrong answer toward the lockout: the
// login_password point is asked as for a wrong password, and its count and
// lock are carried out on what the store's atomic steps return.
func (s *Room) countWrongAnswer(ctx context.Context, client policies.Client, acct policies.Account, u store.User, r *http.Request) error {
	in := policies.Input{Point: policies.PointLoginPassword, Now: s.Now().Unix(), Client: client, Account: acct,
		Request: requestFacts(r), Attempt: policies.PasswordAttempt(false)}
	d := s.Policy.Decide(ctx, in)
	if d.CountFailure {
		n, err := s.Users.AddLoginFailure(ctx, u.ID)
		if err != nil {
			return web.Unavailable(fmt.Errorf("count wrong answer: %w", err))
		}
		if n-1 != acct.ConsecutiveFailures {
			in.Account.ConsecutiveFailures = n - 1
			d = s.Policy.Decide(ctx, in)
		}
	}
	if d.Lock {
		locked, err := s.Users.LockUser(ctx, u.ID, s.Now())
		if err != nil {
			return web.Unavailable(fmt.Errorf("lock profile: %w", err))
		}
		if locked {
			s.Log.InfoContext(ctx, "profile locked", "user_id", u.ID, "by", "challenge answers")
			s.Notices.Send(ctx, u.ID, u.SecurityPhone, u.Email, "account_locked")
		}
		// The step-up ends with the lock: the policy answers for a
		// locked profile.
		in.Account.Locked = true
		in.Attempt = policies.PasswordAttempt(true)
		return s.Site.Denial(s.Policy.Decide(ctx, in))
	}
	return nil
}
