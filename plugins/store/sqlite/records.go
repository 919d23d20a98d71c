package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// PutRecord stores a new record, or replaces one of the same kind and ID that
// has expired at now, in one statement; ErrConflict when the one in the way
// is still live at now.
func (s *Store) PutRecord(ctx context.Context, r store.Record, now time.Time) error {
	res, err := s.write.ExecContext(ctx, `INSERT INTO records (kind, id, subject, payload, attempts, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET subject = excluded.subject, payload = excluded.payload,
			attempts = excluded.attempts, expires_at = excluded.expires_at
		WHERE records.expires_at <= ?`,
		r.Kind, r.ID, r.Subject, payloadArg(r.Payload), r.Attempts, timeArg(r.ExpiresAt), timeArg(now))
	if err != nil {
		return storeErr("put record", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return storeErr("put record", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: put record: %w: a live %s record has the ID", store.ErrConflict, r.Kind)
	}
	return nil
}

// GetRecord returns the record if it has not expired at now.
func (s *Store) GetRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	r, err := scanRecord(kind, id, s.read.QueryRowContext(ctx, `SELECT subject, payload, attempts, expires_at
		FROM records WHERE kind = ? AND id = ? AND expires_at > ?`,
		kind, id, timeArg(now)))
	if err != nil {
		return store.Record{}, storeErr("get record", err)
	}
	return r, nil
}

// TakeRecord deletes the record and returns it, if it has not expired at
// now, in one statement. An expired record stays for Sweep.
func (s *Store) TakeRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	r, err := scanRecord(kind, id, s.write.QueryRowContext(ctx, `DELETE FROM records
		WHERE kind = ? AND id = ? AND expires_at > ?
		RETURNING subject, payload, attempts, expires_at`,
		kind, id, timeArg(now)))
	if err != nil {
		return store.Record{}, storeErr("take record", err)
	}
	return r, nil
}

// AttemptRecord adds one to the attempts of a record that has not expired at
// now and returns it, in one statement.
func (s *Store) AttemptRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	r, err := scanRecord(kind, id, s.write.QueryRowContext(ctx, `UPDATE records SET attempts = attempts + 1
		WHERE kind = ? AND id = ? AND expires_at > ?
		RETURNING subject, payload, attempts, expires_at`,
		kind, id, timeArg(now)))
	if err != nil {
		return store.Record{}, storeErr("attempt record", err)
	}
	return r, nil
}

// scanRecord reads the subject, payload, attempts and expires_at of the
// record of the given kind and ID.
func scanRecord(kind, id string, row interface{ Scan(...any) error }) (store.Record, error) {
	r := store.Record{Kind: kind, ID: id}
	err := row.Scan(&r.Subject, &r.Payload, &r.Attempts, timeCol{&r.ExpiresAt})
	return r, err
}

// payloadArg is a record's payload as a query argument: never nil, which the
// driver would store as NULL.
func payloadArg(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}
