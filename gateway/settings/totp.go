package settings

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

const (
	// KindTOTPEnrolment is the kind of the records that hold an
	// authenticator app's key between its QR code and the confirming code.
	KindTOTPEnrolment = "totp_enrolment"
	enrolmentTTL      = 10 * time.Minute
)

// TOTP is what the room keeps authenticator apps in.
type TOTP interface {
	AddFactor(ctx context.Context, f store.Factor) error
	DeleteFactor(ctx context.Context, userID, id string) error
	PutRecord(ctx context.Context, r store.Record, now time.Time) error
	TakeRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error)
}

// totpBegin starts adding an authenticator app, and answers the key, its
// otpauth:// URL and a QR code for the app to scan.
func (s *Room) totpBegin(w http.ResponseWriter, r *http.Request) error {
	if err := web.CheckJSON(r); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	key, err := s.beginTOTP(w, r, id, "")
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, struct {
		Status     string `json:"status"`
		Secret     string `json:"secret"`
		OTPAuthURL string `json:"otpauth_url"`
		QRCode     string `json:"qr_code"`
	}{"confirm_code", key.Secret, key.URL, string(key.QRCode)})
	return nil
}

// totpKey is a new authenticator app's key as the person is given it.
type totpKey struct {
	// Secret is the key in unpadded base32, for typing in.
	Secret string
	// URL is its otpauth:// URL.
	URL string
	// QRCode is the URL as a QR code, a data: URL of a PNG.
	QRCode template.URL
}

// beginTOTP starts adding an authenticator app: after the settings point
// allows a two-factor change, it makes a key and keeps it for ten minutes
// bound to this session. rd is where a step-up the policy wants returns to
// (see allowed).
func (s *Room) beginTOTP(w http.ResponseWriter, r *http.Request, id session.Identity, rd string) (totpKey, error) {
	if err := s.allowed(w, r, id, "two_factor", rd); err != nil {
		return totpKey{}, err
	}
	secret, otpURL, err := credential.NewTOTPKey(s.Org, id.User.Username, s.Rand)
	if err != nil {
		return totpKey{}, web.Unavailable(err)
	}
	png, err := credential.TOTPQRCode(otpURL, 256)
	if err != nil {
		return totpKey{}, web.Unavailable(err)
	}
	now := s.Now()
	rec := store.Record{ID: id.Session.ID, Kind: KindTOTPEnrolment, Subject: id.User.ID, Payload: secret, ExpiresAt: now.Add(enrolmentTTL)}
	// A second begin replaces the first key.
	if _, err := s.TOTP.TakeRecord(r.Context(), KindTOTPEnrolment, id.Session.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		return totpKey{}, web.Unavailable(err)
	}
	if err := s.TOTP.PutRecord(r.Context(), rec, now); err != nil {
		return totpKey{}, web.Unavailable(err)
	}
	return totpKey{Secret: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret), URL: otpURL,
		QRCode: web.PNGData(png)}, nil
}

type totpConfirmRequest struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// totpConfirm ends adding an authenticator app.
func (s *Room) totpConfirm(w http.ResponseWriter, r *http.Request) error {
	var req totpConfirmRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	if err := s.confirmTOTP(r, id, req.Code, req.Name); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "added", Message: msgTOTPAdded})
	return nil
}

const msgTOTPAdded = "Your authenticator app is set up."

// confirmTOTP ends adding an authenticator app: the first code it shows
// proves the app holds the key. The key is used once: a wrong code ends the
// enrolment and the person starts again.
func (s *Room) confirmTOTP(r *http.Request, id session.Identity, code, name string) error {
	now := s.Now()
	rec, err := s.TOTP.TakeRecord(r.Context(), KindTOTPEnrolment, id.Session.ID, now)
	if errors.Is(err, store.ErrNotFound) || err == nil && rec.Subject != id.User.ID {
		return &web.Error{Status: http.StatusForbidden, Reason: policies.ReasonBadRequest, Message: "Start adding the authenticator app again."}
	} else if err != nil {
		return web.Unavailable(err)
	}
	step, ok := credential.CheckTOTP(rec.Payload, code, now)
	if !ok {
		return &web.Error{Status: http.StatusForbidden, Reason: policies.ReasonBadRequest,
			Message: "That code doesn't match. Start adding the authenticator app again.", Err: errors.New("totp enrolment: wrong code")}
	}
	_, fid, err := s.Site.NewToken()
	if err != nil {
		return web.Unavailable(err)
	}
	if name = strings.TrimSpace(name); name == "" || len(name) > 64 {
		name = "Authenticator app"
	}
	if err := s.TOTP.AddFactor(r.Context(), store.Factor{ID: fid, UserID: id.User.ID, Kind: "totp", Name: name,
		Secret: rec.Payload, Counter: step, CreatedAt: now, LastUsedAt: now}); err != nil {
		return web.Unavailable(fmt.Errorf("add authenticator app: %w", err))
	}
	s.Log.InfoContext(r.Context(), "authenticator app added", "user_id", id.User.ID)
	s.Notices.Send(r.Context(), id.User.ID, id.User.SecurityPhone, id.User.Email, "two_factor_changed")
	return nil
}
