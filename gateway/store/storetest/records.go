package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// recordExpiry is when the suite's records expire; they are put at at(0).
var recordExpiry = at(time.Hour + 250*time.Millisecond)

// The kinds the suite puts records under.
const (
	exchange = "exchange"
	recovery = "recovery"
)

// newRecord returns a record of the given kind with every field but Attempts
// set, distinct per ID, expiring at recordExpiry.
func newRecord(kind, id string) store.Record {
	return store.Record{
		ID:        id,
		Kind:      kind,
		Subject:   sessionID(1),
		Payload:   []byte(`{"host":"brokerage.example.com","id":"` + id + `"}`),
		ExpiresAt: recordExpiry.In(elsewhere),
	}
}

// checkRecord compares every field of a record read back.
func checkRecord(t *testing.T, what string, got, want store.Record) {
	t.Helper()
	var d diff
	check(&d, "ID", got.ID, want.ID)
	check(&d, "Kind", got.Kind, want.Kind)
	check(&d, "Subject", got.Subject, want.Subject)
	if !bytes.Equal(got.Payload, want.Payload) {
		d = append(d, fmt.Sprintf("Payload = %q, want %q", got.Payload, want.Payload))
	}
	check(&d, "Attempts", got.Attempts, want.Attempts)
	checkTime(&d, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	d.report(t, what)
}

// putRecord stores the record at now and fails the test if it cannot.
func putRecord(t *testing.T, s store.Records, now time.Time, r store.Record) {
	t.Helper()
	ok(t, "PutRecord("+r.Kind+", "+r.ID+")", s.PutRecord(t.Context(), r, now))
}

// takeRecord checks that the record can be read without using it up, then
// that it is taken, each time exactly as wanted.
func takeRecord(t *testing.T, s store.Records, now time.Time, want store.Record) {
	t.Helper()
	for range 2 {
		op := "GetRecord(" + want.Kind + ", " + want.ID + ")"
		got, err := s.GetRecord(t.Context(), want.Kind, want.ID, now)
		ok(t, op, err)
		checkRecord(t, op, got, want)
	}
	op := "TakeRecord(" + want.Kind + ", " + want.ID + ")"
	got, err := s.TakeRecord(t.Context(), want.Kind, want.ID, now)
	ok(t, op, err)
	checkRecord(t, op, got, want)
}

// attemptRecord checks that AttemptRecord returns the record exactly as
// wanted (with the attempt counted).
func attemptRecord(t *testing.T, s store.Records, now time.Time, want store.Record) {
	t.Helper()
	op := "AttemptRecord(" + want.Kind + ", " + want.ID + ")"
	got, err := s.AttemptRecord(t.Context(), want.Kind, want.ID, now)
	ok(t, op, err)
	checkRecord(t, op, got, want)
}

// recordGone checks that the record can be neither read, attempted nor
// taken.
func recordGone(t *testing.T, s store.Records, kind, id string, now time.Time, why string) {
	t.Helper()
	_, err := s.GetRecord(t.Context(), kind, id, now)
	is(t, "GetRecord("+kind+", "+id+") "+why, err, store.ErrNotFound)
	_, err = s.AttemptRecord(t.Context(), kind, id, now)
	is(t, "AttemptRecord("+kind+", "+id+") "+why, err, store.ErrNotFound)
	_, err = s.TakeRecord(t.Context(), kind, id, now)
	is(t, "TakeRecord("+kind+", "+id+") "+why, err, store.ErrNotFound)
}

func recordTests() []test[store.Records] {
	before := recordExpiry.Add(-time.Millisecond)
	return []test[store.Records]{
		{"a record is taken once", func(t *testing.T, s store.Records) {
			r := newRecord(exchange, "r1")
			putRecord(t, s, at(0), r)
			takeRecord(t, s, at(0), r)
			recordGone(t, s, exchange, "r1", at(0), "after it was taken")
		}},
		{"unknown record is not found", func(t *testing.T, s store.Records) {
			recordGone(t, s, exchange, "r1", at(0), "on an empty store")
			putRecord(t, s, at(0), newRecord(exchange, "r1"))
			recordGone(t, s, exchange, "r2", at(0), "of another ID")
			recordGone(t, s, exchange, sessionID(1), at(0), "by subject")
		}},
		{"records are independent", func(t *testing.T, s store.Records) {
			r1, r2 := newRecord(exchange, "r1"), newRecord(exchange, "r2")
			r2.Subject = sessionID(2)
			putRecord(t, s, at(0), r1)
			putRecord(t, s, at(0), r2)
			r2.Attempts = 1
			attemptRecord(t, s, at(0), r2)
			takeRecord(t, s, at(0), r1)
			takeRecord(t, s, at(0), r2)
		}},
		{"a record is found under its own kind only", func(t *testing.T, s store.Records) {
			code := newRecord(exchange, "r1")
			putRecord(t, s, at(0), code)
			recordGone(t, s, recovery, "r1", at(0), "under another kind")
			recordGone(t, s, "", "r1", at(0), "under no kind")
			// The same ID under another kind is another record, not a
			// conflict.
			token := newRecord(recovery, "r1")
			token.Subject, token.Payload = "user-u1", []byte("recovery payload")
			putRecord(t, s, at(0), token)
			token.Attempts = 1
			attemptRecord(t, s, at(0), token)
			takeRecord(t, s, at(0), token)
			recordGone(t, s, recovery, "r1", at(0), "after it was taken")
			// The attempt and the take under the other kind left this one
			// alone.
			takeRecord(t, s, at(0), code)
		}},
		{"every field round-trips", func(t *testing.T, s store.Records) {
			r := newRecord(exchange, "r1")
			r.Attempts = 2
			r.ExpiresAt = at(17*time.Minute + 333*time.Millisecond)
			putRecord(t, s, at(0), r)
			r.Attempts = 3
			attemptRecord(t, s, at(0), r)
			takeRecord(t, s, at(0), r)
		}},
		{"payloads round-trip byte for byte", func(t *testing.T, s store.Records) {
			large := make([]byte, 64<<10)
			for i := range large {
				large[i] = byte(i * 7)
			}
			payloads := []struct {
				name  string
				bytes []byte
			}{
				{"nil", nil},
				{"empty", []byte{}},
				{"NUL", []byte{0}},
				{"binary", []byte{0x00, 0xff, 0xfe, 0x00, 0x80, 0x7f, 0x00}},
				{"invalid UTF-8", []byte("a\xc3\x28b\xffc")},
				{"text with NUL", []byte("host\x00brokerage.example.com")},
				{"trailing spaces", []byte("payload  \n")},
				{"64 KiB", large},
			}
			for i, p := range payloads {
				r := newRecord(exchange, fmt.Sprintf("r%d", i))
				r.Payload = p.bytes
				putRecord(t, s, at(0), r)
				r.Attempts = 1
				attemptRecord(t, s, at(0), r)
				takeRecord(t, s, at(0), r)
			}
		}},
		{"attempts count up and return the record", func(t *testing.T, s store.Records) {
			r := newRecord(exchange, "r1")
			putRecord(t, s, at(0), r)
			for want := 1; want <= 5; want++ {
				r.Attempts = want
				attemptRecord(t, s, at(time.Duration(want)*time.Second), r)
			}
			takeRecord(t, s, at(time.Minute), r)
		}},
		{"a record is valid until just before it expires", func(t *testing.T, s store.Records) {
			r := newRecord(exchange, "r1")
			putRecord(t, s, at(0), r)
			r.Attempts = 1
			attemptRecord(t, s, before, r)
			takeRecord(t, s, before, r)
		}},
		{"an expired record is not found", func(t *testing.T, s store.Records) {
			for id, now := range map[string]time.Time{
				"at-expiry":    recordExpiry,
				"after-expiry": recordExpiry.Add(time.Second),
				"long-after":   recordExpiry.Add(30 * 24 * time.Hour),
			} {
				putRecord(t, s, at(0), newRecord(exchange, id))
				recordGone(t, s, exchange, id, now, "when expired")
			}
		}},
		{"a put conflicts with a record that has not expired", func(t *testing.T, s store.Records) {
			for i, now := range []time.Time{at(0), before, before.In(elsewhere)} {
				id := fmt.Sprintf("r%d", i)
				old := newRecord(exchange, id)
				old.Attempts = 2
				putRecord(t, s, at(0), old)
				r := newRecord(exchange, id)
				r.Subject, r.Payload, r.ExpiresAt = sessionID(2), []byte("new"), now.Add(time.Hour)
				err := s.PutRecord(t.Context(), r, now)
				is(t, fmt.Sprintf("PutRecord at %v over a record expiring at %v", now, old.ExpiresAt), err, store.ErrConflict)
				// The record in the way is as it was.
				takeRecord(t, s, before, old)
			}
		}},
		{"a put replaces a record that has expired", func(t *testing.T, s store.Records) {
			for i, now := range []time.Time{
				recordExpiry,
				recordExpiry.Add(time.Second),
				recordExpiry.Add(30 * 24 * time.Hour).In(elsewhere),
			} {
				id := fmt.Sprintf("r%d", i)
				old := newRecord(exchange, id)
				old.Subject, old.Payload, old.Attempts = sessionID(2), []byte("old"), 4
				putRecord(t, s, at(0), old)
				r := newRecord(exchange, id)
				r.ExpiresAt = now.Add(time.Hour)
				putRecord(t, s, now, r)
				r.Attempts = 1
				attemptRecord(t, s, now, r)
				takeRecord(t, s, now, r)
				// Nothing of the old record is left either.
				recordGone(t, s, exchange, id, at(0), "after the new one was taken")
			}
		}},
		{"concurrent puts over an expired record: one replaces it", func(t *testing.T, s store.Records) {
			putRecord(t, s, at(0), newRecord(exchange, "r1"))
			var n atomic.Int32
			put, errs := concurrently(parallelism, func() (store.Record, error) {
				r := newRecord(exchange, "r1")
				r.Subject = sessionID(byte(n.Add(1)))
				r.ExpiresAt = recordExpiry.Add(time.Hour)
				return r, s.PutRecord(t.Context(), r, recordExpiry)
			})
			wins, winner := 0, store.Record{}
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
					winner = put[i]
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("PutRecord: error = %v, want success or %v", err, store.ErrConflict)
				}
			}
			if wins != 1 {
				t.Fatalf("%d of %d concurrent PutRecord calls succeeded, want exactly 1", wins, parallelism)
			}
			takeRecord(t, s, recordExpiry, winner)
		}},
		{"concurrent takes succeed once", func(t *testing.T, s store.Records) {
			r := newRecord(exchange, "r1")
			putRecord(t, s, at(0), r)
			taken, errs := concurrently(parallelism, func() (store.Record, error) {
				return s.TakeRecord(t.Context(), exchange, "r1", at(0))
			})
			wins := 0
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
					checkRecord(t, "TakeRecord", taken[i], r)
				case !errors.Is(err, store.ErrNotFound):
					t.Errorf("TakeRecord: error = %v, want success or %v", err, store.ErrNotFound)
				}
			}
			if wins != 1 {
				t.Fatalf("%d of %d concurrent TakeRecord calls succeeded, want exactly 1", wins, parallelism)
			}
		}},
		{"concurrent attempts all count", func(t *testing.T, s store.Records) {
			r := newRecord(exchange, "r1")
			putRecord(t, s, at(0), r)
			records, errs := concurrently(parallelism, func() (store.Record, error) {
				return s.AttemptRecord(t.Context(), exchange, "r1", at(0))
			})
			counts := make([]int, len(records))
			for i, got := range records {
				counts[i] = got.Attempts
			}
			countsOneToN(t, "AttemptRecord", counts, errs)
			r.Attempts = parallelism
			takeRecord(t, s, at(0), r)
		}},
		{"concurrent attempts racing a take: counted attempts come before it", func(t *testing.T, s store.Records) {
			// Once the record is taken, no attempt finds it; the take
			// returns every attempt counted before it.
			r := newRecord(exchange, "r1")
			putRecord(t, s, at(0), r)
			type result struct {
				take bool
				rec  store.Record
			}
			results, errs := concurrently(parallelism+1, func() (result, error) {
				rec, err := s.AttemptRecord(t.Context(), exchange, "r1", at(0))
				if err != nil || rec.Attempts != parallelism/2 {
					return result{rec: rec}, err
				}
				rec, err = s.TakeRecord(t.Context(), exchange, "r1", at(0))
				return result{take: true, rec: rec}, err
			})
			attempts, taken := 0, -1
			for i, res := range results {
				switch {
				case errs[i] == nil && res.take:
					taken = res.rec.Attempts
				case errs[i] == nil:
					attempts++
				case !errors.Is(errs[i], store.ErrNotFound):
					t.Errorf("AttemptRecord or TakeRecord: error = %v, want success or %v", errs[i], store.ErrNotFound)
				}
			}
			if taken < parallelism/2 {
				t.Fatalf("TakeRecord after attempt %d returned Attempts %d", parallelism/2, taken)
			}
			// The taker's own attempt is among those counted.
			if attempts+1 != taken {
				t.Fatalf("%d attempts succeeded besides the taker's, but the taken record counts %d", attempts, taken)
			}
		}},
		{"a cancelled context fails every method, which has no effect", func(t *testing.T, s store.Records) {
			r := newRecord(exchange, "r1")
			putRecord(t, s, at(0), r)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()

			fails(t, "PutRecord with a cancelled context", s.PutRecord(ctx, newRecord(exchange, "r2"), at(0)))
			recordGone(t, s, exchange, "r2", at(0), "after a cancelled PutRecord")

			_, err := s.AttemptRecord(ctx, exchange, "r1", at(0))
			fails(t, "AttemptRecord with a cancelled context", err)
			_, err = s.TakeRecord(ctx, exchange, "r1", at(0))
			fails(t, "TakeRecord with a cancelled context", err)
			takeRecord(t, s, at(0), r)
		}},
	}
}
