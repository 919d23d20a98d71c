package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
)

const (
	// KindExchange is the kind of the single-use records behind exchange
	// codes.
	KindExchange = "exchange"
	// exchangeTTL is how long an exchange code may be redeemed.
	exchangeTTL = 30 * time.Second
)

// ErrBadExchange is an exchange code that is malformed, unknown, used,
// expired or presented on another host than the one it was issued for.
var ErrBadExchange = errors.New("bad exchange code")

// Issue makes a single-use code, valid for a short while, that opens a
// session of id's login on the host at target (an authority, "host" or
// "host:port", as the browser will present it).
func (m *Manager) Issue(ctx context.Context, id Identity, target string) (string, error) {
	code, rid, err := web.NewToken(m.rand)
	if err != nil {
		return "", err
	}
	now := m.now()
	err = m.records.PutRecord(ctx, store.Record{
		ID: rid, Kind: KindExchange, Subject: id.Session.ID,
		Payload: []byte(target), ExpiresAt: now.Add(exchangeTTL),
	}, now)
	if err != nil {
		return "", fmt.Errorf("issue exchange code: %w", err)
	}
	return code, nil
}

// Redeem takes an exchange code on the host it was issued for (here, the
// authority the request reached) and opens a session there that belongs to
// the same login as the session on loginHost that issued it. ok is false when
// that session has ended meanwhile; ErrBadExchange when the code is no good
// here; any other error is the store's.
func (m *Manager) Redeem(w http.ResponseWriter, r *http.Request, code, here, loginHost string) (ok bool, err error) {
	if !web.ValidToken(code) {
		return false, fmt.Errorf("%w: malformed", ErrBadExchange)
	}
	rec, err := m.records.TakeRecord(r.Context(), KindExchange, web.TokenID(code), m.now())
	if errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("%w: unknown, used or expired", ErrBadExchange)
	}
	if err != nil {
		return false, fmt.Errorf("redeem exchange code: %w", err)
	}
	if target := string(rec.Payload); target != here {
		return false, fmt.Errorf("%w: code for %s redeemed on %s", ErrBadExchange, target, here)
	}
	src, ok, err := m.ByID(r.Context(), rec.Subject, loginHost)
	if err != nil || !ok {
		return false, err
	}
	m.EndCurrent(r)
	tmpl := src.Session
	if _, err := m.open(w, r, store.Session{LoginID: tmpl.LoginID, UserID: tmpl.UserID, Methods: tmpl.Methods,
		AuthTime: tmpl.AuthTime, ExpiresAt: tmpl.ExpiresAt, DeviceID: tmpl.DeviceID}); err != nil {
		return false, err
	}
	return true, nil
}
