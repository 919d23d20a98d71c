package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// PutRecord stores a new record, or replaces whole one of the same kind and
// ID that has expired at now, in one statement; ErrConflict when the one in
// the way is still live at now. Of concurrent puts over an expired record,
// the first replaces it and the rest, which wait for its row, find it live.
func (s *Store) PutRecord(ctx context.Context, r store.Record, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO records (kind, id, subject, payload, attempts, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (kind, id) DO UPDATE SET subject = excluded.subject, payload = excluded.payload,
			attempts = excluded.attempts, expires_at = excluded.expires_at
		WHERE records.expires_at <= $7`,
		r.Kind, r.ID, r.Subject, bytesArg(r.Payload), r.Attempts, ts(r.ExpiresAt), ts(now))
	if err != nil {
		return storeErr("put record", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: put record: %w: a live %s record has the ID", store.ErrConflict, r.Kind)
	}
	return nil
}

// GetRecord returns the record if it has not expired at now.
func (s *Store) GetRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	return s.record(ctx, "get record", `SELECT subject, payload, attempts, expires_at FROM records
		WHERE kind = $1 AND id = $2 AND expires_at > $3`, kind, id, now)
}

// TakeRecord deletes the record and returns it, if it has not expired at
// now, in one statement: of concurrent takers one deletes the row, and the
// rest find none. An expired record stays for Sweep.
func (s *Store) TakeRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	return s.record(ctx, "take record", `DELETE FROM records
		WHERE kind = $1 AND id = $2 AND expires_at > $3
		RETURNING subject, payload, attempts, expires_at`, kind, id, now)
}

// AttemptRecord adds one to the attempts of a record that has not expired at
// now and returns it as updated, in one statement: concurrent attempts each
// see the count their own increment made.
func (s *Store) AttemptRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	return s.record(ctx, "attempt record", `UPDATE records SET attempts = attempts + 1
		WHERE kind = $1 AND id = $2 AND expires_at > $3
		RETURNING subject, payload, attempts, expires_at`, kind, id, now)
}

// record runs a statement on the live record of the kind and ID that returns
// its subject, payload, attempts and expires_at.
func (s *Store) record(ctx context.Context, op, query, kind, id string, now time.Time) (store.Record, error) {
	r := store.Record{Kind: kind, ID: id}
	err := s.pool.QueryRow(ctx, query, kind, id, ts(now)).Scan(&r.Subject, &r.Payload, &r.Attempts, timeCol{&r.ExpiresAt})
	if err != nil {
		return store.Record{}, lookupErr(op, err)
	}
	return r, nil
}

// bytesArg is a payload or secret as a bytea query argument: never nil,
// which would be NULL.
func bytesArg(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}
