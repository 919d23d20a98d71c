package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/policies"
)

// PhoneUsers is what SetSecurityPhone reads and changes of profiles.
type PhoneUsers interface {
	UserByName(ctx context.Context, username string) (store.User, error)
	SetSecurityPhone(ctx context.Context, userID, phone string, at time.Time) error
}

// PhoneChange is what SetSecurityPhone did.
type PhoneChange struct {
	// User is the profile as it was before the change.
	User store.User
	// Phone are the new number's facts (Masked for showing it); zero when
	// Removed.
	Phone policies.PhoneFacts
	// E164 is the number stored, "" when Removed. Never log it: log
	// policies.MaskPhone(E164).
	E164 string
	// Removed is true when the security phone was removed.
	Removed bool
	// Replaced is true when the profile had a security phone before.
	Replaced bool
}

// PhoneError is SetSecurityPhone's refusal of the number itself. Its
// message never repeats the number.
type PhoneError struct {
	// LineType is the refused number's line type (voip, unknown); ""
	// for a number that is not valid.
	LineType string
	Err      error
}

func (e *PhoneError) Error() string { return e.Err.Error() }
func (e *PhoneError) Unwrap() error { return e.Err }

// SetSecurityPhone replaces the security phone of the profile named
// username with raw, read by phones (in its default region unless raw
// starts with +) and stored in E.164, or removes it when raw is empty. It
// refuses a number that is not valid, a VoIP number (codes are never sent
// to one) and a number whose line type could not be determined (a carrier
// lookup that failed), with a *PhoneError. An unknown username is
// store.ErrNotFound (wrapped), with a zero PhoneChange.User.
func SetSecurityPhone(ctx context.Context, users PhoneUsers, phones facts.Phones, username, raw string, now time.Time) (PhoneChange, error) {
	u, err := users.UserByName(ctx, credential.CanonicalUsername(username))
	if err != nil {
		return PhoneChange{}, fmt.Errorf("security phone: %w", err)
	}
	c := PhoneChange{User: u, Replaced: u.SecurityPhone != "", Removed: raw == ""}
	if raw != "" {
		pf, number, err := phones.Classify(ctx, raw)
		switch {
		case err != nil || !pf.Valid:
			if err == nil {
				err = errors.New("not a valid phone number")
			}
			return c, &PhoneError{Err: err}
		case pf.LineType == "voip":
			return c, &PhoneError{LineType: pf.LineType, Err: errors.New("a VoIP number never receives security codes; give a number of a phone in the customer's possession")}
		case pf.LineType == "unknown":
			return c, &PhoneError{LineType: pf.LineType, Err: errors.New("the number's line type could not be determined (the carrier lookup failed); try again")}
		}
		c.Phone, c.E164 = pf, number
	}
	if err := users.SetSecurityPhone(ctx, u.ID, c.E164, now); err != nil {
		return c, fmt.Errorf("security phone: %w", err)
	}
	return c, nil
}
