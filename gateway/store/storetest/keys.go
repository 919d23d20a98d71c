package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/store"
)

// newKey returns a signing key created at created. The bytes stand in for a
// PKCS #8 encoding: stores keep them opaque.
func newKey(id string, created time.Time) assertion.Key {
	der := []byte{0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x00, 0xff}
	der = append(der, id...)
	return assertion.Key{ID: id, PrivateKey: der, CreatedAt: created}
}

// signingKeys checks that SigningKeys returns exactly want, in order.
func signingKeys(t *testing.T, s assertion.KeyStore, want ...assertion.Key) {
	t.Helper()
	got, err := s.SigningKeys(t.Context())
	ok(t, "SigningKeys", err)
	if len(got) != len(want) {
		t.Fatalf("SigningKeys returned %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		var d diff
		check(&d, "ID", got[i].ID, want[i].ID)
		if !bytes.Equal(got[i].PrivateKey, want[i].PrivateKey) {
			d = append(d, fmt.Sprintf("PrivateKey = %x, want %x", got[i].PrivateKey, want[i].PrivateKey))
		}
		checkTime(&d, "CreatedAt", got[i].CreatedAt, want[i].CreatedAt)
		checkTime(&d, "RetiredAt", got[i].RetiredAt, want[i].RetiredAt)
		d.report(t, fmt.Sprintf("SigningKeys[%d]", i))
	}
}

func signingKeyTests() []test[assertion.KeyStore] {
	return []test[assertion.KeyStore]{
		{"an empty store has no keys", func(t *testing.T, s assertion.KeyStore) {
			signingKeys(t, s)
		}},
		{"keys are listed oldest first", func(t *testing.T, s assertion.KeyStore) {
			oldest := newKey("k-oldest", at(-48*time.Hour+time.Millisecond))
			middle := newKey("k-middle", at(-24*time.Hour).In(elsewhere))
			newest := newKey("k-newest", at(0))
			// Added out of order, with IDs that sort in neither order.
			for _, k := range []assertion.Key{middle, newest, oldest} {
				ok(t, "AddSigningKey", s.AddSigningKey(t.Context(), k))
			}
			signingKeys(t, s, oldest, middle, newest)
		}},
		{"retire sets RetiredAt", func(t *testing.T, s assertion.KeyStore) {
			old := newKey("k1", at(-24*time.Hour))
			current := newKey("k2", at(0))
			ok(t, "AddSigningKey", s.AddSigningKey(t.Context(), old))
			ok(t, "AddSigningKey", s.AddSigningKey(t.Context(), current))
			old.RetiredAt = at(5*time.Minute + 5*time.Millisecond).In(elsewhere)
			ok(t, "RetireSigningKey", s.RetireSigningKey(t.Context(), old.ID, old.RetiredAt))
			signingKeys(t, s, old, current)
		}},
		{"duplicate key ID conflicts", func(t *testing.T, s assertion.KeyStore) {
			k := newKey("k1", at(0))
			ok(t, "AddSigningKey", s.AddSigningKey(t.Context(), k))
			again := newKey("k1", at(time.Hour))
			again.PrivateKey = []byte("other key material")
			err := s.AddSigningKey(t.Context(), again)
			is(t, "AddSigningKey with a taken ID", err, store.ErrConflict)
			signingKeys(t, s, k)
		}},
		{"a cancelled context fails reads", func(t *testing.T, s assertion.KeyStore) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.SigningKeys(ctx)
			fails(t, "SigningKeys with a cancelled context", err)
		}},
		{"a cancelled context fails writes, which have no effect", func(t *testing.T, s assertion.KeyStore) {
			k := newKey("k1", at(0))
			ok(t, "AddSigningKey", s.AddSigningKey(t.Context(), k))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			fails(t, "AddSigningKey with a cancelled context", s.AddSigningKey(ctx, newKey("k2", at(time.Hour))))
			fails(t, "RetireSigningKey with a cancelled context", s.RetireSigningKey(ctx, "k1", at(time.Hour)))
			signingKeys(t, s, k)
		}},
	}
}
