package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// CreateUsers stores many new users in one transaction, as CreateUser stores
// one: for loading a store at once (an import, a benchmark). Nothing is
// stored if any user fails; ErrConflict when an ID or a username is taken.
func (s *Store) CreateUsers(ctx context.Context, users []store.User) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (`+userValues+`)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, u := range users {
			if _, err := st.ExecContext(ctx, userArgs(u)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storeErr("create users", err)
	}
	return nil
}

// CreateSessions stores many new sessions in one transaction, as
// CreateSession stores one: for loading a store at once. Nothing is stored if
// any session fails; ErrConflict when an ID is taken.
func (s *Store) CreateSessions(ctx context.Context, sessions []store.Session) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, insertSession)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, sess := range sessions {
			args, err := sessionArgs(sess)
			if err != nil {
				return err
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storeErr("create sessions", err)
	}
	return nil
}

// TouchSessions sets the LastSeen of many sessions in one transaction;
// unknown sessions are skipped.
func (s *Store) TouchSessions(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE sessions SET last_seen = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for id, at := range seen {
			if _, err := st.ExecContext(ctx, timeArg(at), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storeErr("touch sessions", err)
	}
	return nil
}
