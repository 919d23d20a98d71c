package selfservice

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// Adding an account (or a vehicle, or a card) to a profile from inside a
// session: the person types its number, which is compared, in constant
// time, with every account the profile's customer record holds. An
// account of an eligible status adds its product to the profile, and the
// session's cache on this instance is dropped so that the next proxied
// request reaches the new product.

const addAccountPage = web.Prefix + "settings/accounts/add"

const (
	msgAccountAdded   = "The account is added to your profile."
	msgAccountUnknown = "We couldn't find that account among the ones you hold with us. Check the number and try again."
	msgAccountHeld    = "Your profile already reaches that account."
	msgNoRecord       = "Your profile isn't linked to a customer record, so accounts can't be added online."
)

// matchAccount returns the account whose number is number, comparing
// every account's number in constant time whichever matches.
func matchAccount(accounts []Account, number string) (Account, bool) {
	var found Account
	if number == "" {
		return found, false
	}
	match := 0
	for _, a := range accounts {
		eq := subtle.ConstantTimeCompare([]byte(NormalAccountNumber(a.Number)), []byte(number))
		if eq == 1 && match == 0 {
			found = a
		}
		match |= eq
	}
	return found, match == 1
}

// addAccount adds the account whose number is typed to the profile.
func (s *Room) addAccount(r *http.Request, id session.Identity, typed string) error {
	ctx := r.Context()
	number := NormalAccountNumber(typed)
	if number == "" {
		return fieldError("account_number", msgAccountNumber)
	}
	u, err := s.Users.UserByID(ctx, id.User.ID)
	if err != nil {
		return web.Unavailable(fmt.Errorf("add account: %w", err))
	}
	if u.CustomerID == "" {
		return &web.Error{Status: http.StatusConflict, Reason: policies.ReasonBadRequest, Message: msgNoRecord}
	}
	cust, err := s.Directory.Customer(ctx, u.CustomerID)
	if errors.Is(err, ErrNoMatch) {
		return &web.Error{Status: http.StatusConflict, Reason: policies.ReasonBadRequest, Message: msgNoRecord,
			Err: errors.New("add account: the profile's customer record is gone")}
	} else if err != nil {
		return web.Unavailable(fmt.Errorf("add account: directory: %w", err))
	}
	a, ok := matchAccount(cust.Accounts, number)
	if !ok {
		s.Log.InfoContext(ctx, "account not added", "user_id", u.ID, "reason", policies.ReasonIdentityNotVerified)
		return &FieldError{Field: "account_number", Refusal: &web.Error{Status: http.StatusForbidden,
			Reason: policies.ReasonIdentityNotVerified, Message: msgAccountUnknown}}
	}
	if !s.Policy.EnrolmentRules().Eligible(a.Status) {
		return &FieldError{Field: "account_number", Refusal: &web.Error{Status: http.StatusForbidden,
			Reason: policies.ReasonAccountNotEligible, Message: MsgNotEligible}}
	}
	if slices.Contains(u.Products, a.Product) {
		return &FieldError{Field: "account_number", Refusal: &web.Error{Status: http.StatusConflict,
			Reason: policies.ReasonBadRequest, Message: msgAccountHeld}}
	}
	products := append(slices.Clone(u.Products), a.Product)
	if err := s.Users.SetProducts(ctx, u.ID, products, s.Now()); errors.Is(err, store.ErrNotFound) {
		return &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonNoSession, Message: web.MsgSessionEnded}
	} else if err != nil {
		return web.Unavailable(fmt.Errorf("add account: %w", err))
	}
	s.Sessions.RefreshLogin(id.Session.LoginID)
	s.Log.InfoContext(ctx, "account added", "user_id", u.ID, "product", a.Product)
	return nil
}

type addAccountRequest struct {
	AccountNumber string `json:"account_number"`
}

func (s *Room) apiAddAccount(w http.ResponseWriter, r *http.Request) error {
	var req addAccountRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	if err := s.addAccount(r, id, req.AccountNumber); err != nil {
		return s.api(w, r, err)
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "added", Message: msgAccountAdded})
	return nil
}

func (s *Room) addAccountPage(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.Sessions.Require(r); err != nil {
		return s.signIn(w, r, err)
	}
	msg := ""
	if r.URL.Query().Get("done") == "added" {
		msg = msgAccountAdded
	}
	return s.show(w, r, http.StatusOK, "account_add", pageData{Title: "Add an account", Message: msg})
}

func (s *Room) addAccountForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return s.signIn(w, r, err)
	}
	if err := s.addAccount(r, id, r.PostFormValue("account_number")); err != nil {
		return s.refused(w, r, "account_add", pageData{Title: "Add an account"}, err)
	}
	http.Redirect(w, r, addAccountPage+"?done=added", http.StatusSeeOther)
	return nil
}

// signIn sends a browser without a session to sign in and come back.
func (s *Room) signIn(w http.ResponseWriter, r *http.Request, err error) error {
	var e *web.Error
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		http.Redirect(w, r, web.Prefix+"login?rd="+addAccountPage, http.StatusSeeOther)
		return nil
	}
	return err
}
