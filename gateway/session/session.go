package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	sessionCookie = "__Host-portcullis"
	csrfCookie    = "__Host-portcullis-csrf"
	// tokenBytes is the size of session tokens, exchange codes and CSRF
	// tokens: 256 bits of randomness.
	tokenBytes = 32
)

// newToken returns a random token for a cookie or URL and the ID it is stored
// under (its SHA-256), so that a copy of the store does not hold usable tokens.
func newToken(rand io.Reader) (token, id string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", "", fmt.Errorf("random token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, tokenID(token), nil
}

func tokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// validToken reports whether s has the shape of a token we issued, so that
// garbage never reaches the store.
func validToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// identity is a valid session with its user, as the proxy needs it.
type identity struct {
	Session Session
	User    User
}

// touchEvery bounds how often a session's LastSeen is written: idle limits
// are measured with this granularity, and busy sessions do not write on every
// request.
func (s *Server) touchEvery() time.Duration {
	return min(s.cfg.Session.IdleTimeout/10, 30*time.Second)
}

// currentIdentity returns the session named by the request's cookie on this
// host, with its user. ok is false when there is no valid session: no cookie,
// unknown, for another host, idle or past its absolute limit. An error means
// the store could not answer, and the caller must deny.
func (s *Server) currentIdentity(r *http.Request) (id identity, ok bool, err error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !validToken(c.Value) {
		return identity{}, false, nil
	}
	return s.identityByID(r.Context(), tokenID(c.Value), hostName(r.Host))
}

func (s *Server) identityByID(ctx context.Context, sid, host string) (identity, bool, error) {
	now := s.now()
	id, cached := s.idCache.Get(sid)
	if !cached {
		sess, err := s.store.GetSession(ctx, sid)
		if errors.Is(err, ErrNotFound) {
			return identity{}, false, nil
		}
		if err != nil {
			return identity{}, false, fmt.Errorf("get session: %w", err)
		}
		user, err := s.store.UserByID(ctx, sess.UserID)
		if errors.Is(err, ErrNotFound) {
			_ = s.store.DeleteLogin(ctx, sess.LoginID)
			return identity{}, false, nil
		}
		if err != nil {
			return identity{}, false, fmt.Errorf("get session user: %w", err)
		}
		id = identity{Session: sess, User: user}
	}
	sess := id.Session
	if sess.Host != host {
		return identity{}, false, nil
	}
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= s.cfg.Session.IdleTimeout {
		s.idCache.Remove(sid)
		if err := s.store.DeleteSession(ctx, sid); err != nil && !errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(ctx, "delete expired session", "error", err)
		}
		return identity{}, false, nil
	}
	if now.Sub(sess.LastSeen) >= s.touchEvery() {
		// Writing LastSeen also finds out whether the session was ended
		// elsewhere (another replica, an administrator) since it was
		// cached. The entry is dropped so the next request reads it anew.
		err := s.store.TouchSession(ctx, sid, now)
		s.idCache.Remove(sid)
		if errors.Is(err, ErrNotFound) {
			return identity{}, false, nil
		}
		if err != nil {
			return identity{}, false, fmt.Errorf("touch session: %w", err)
		}
		id.Session.LastSeen = now
		return id, true, nil
	}
	if !cached {
		// Added only when read from the store: re-adding on every hit would
		// renew the entry's lifetime and keep a revoked session alive
		// while it is busy.
		s.idCache.Add(sid, id)
	}
	return id, true, nil
}

// startSession opens a session on the request's host for a user who has
// just signed in, as a new login. Any session the browser already had on this
// host is ended first, so a session ID planted before sign-in is never
// promoted (session fixation).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user User, methods []string, lifetime time.Duration) (Session, error) {
	s.endCurrentSession(r)
	_, loginID, err := newToken(s.rand)
	if err != nil {
		return Session{}, err
	}
	now := s.now()
	return s.openSession(w, r, Session{
		LoginID:   loginID,
		UserID:    user.ID,
		Methods:   methods,
		AuthTime:  now,
		ExpiresAt: now.Add(lifetime),
	})
}

// openSession stores a session for the request's host with a fresh token and
// sets its cookie. LoginID, UserID, Methods, AuthTime and ExpiresAt come from
// tmpl.
func (s *Server) openSession(w http.ResponseWriter, r *http.Request, tmpl Session) (Session, error) {
	token, sid, err := newToken(s.rand)
	if err != nil {
		return Session{}, err
	}
	sess := tmpl
	sess.ID = sid
	sess.Host = hostName(r.Host)
	sess.LastSeen = s.now()
	if err := s.store.CreateSession(r.Context(), sess); err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return sess, nil
}

// endCurrentSession deletes the request's session on this host, if any.
func (s *Server) endCurrentSession(r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !validToken(c.Value) {
		return
	}
	sid := tokenID(c.Value)
	s.idCache.Remove(sid)
	if err := s.store.DeleteSession(r.Context(), sid); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.ErrorContext(r.Context(), "delete session", "error", err)
	}
}

// endLogin ends every session of the login, on every host.
func (s *Server) endLogin(ctx context.Context, loginID string) error {
	if err := s.store.DeleteLogin(ctx, loginID); err != nil {
		return fmt.Errorf("end login: %w", err)
	}
	for _, sid := range s.idCache.Keys() {
		if id, ok := s.idCache.Peek(sid); ok && id.Session.LoginID == loginID {
			s.idCache.Remove(sid)
		}
	}
	return nil
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}
