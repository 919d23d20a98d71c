package credential

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/passkey/passkeytest"
	"github.com/portcullis/portcullis/gateway/store"
)

const (
	testRPID   = "login.example"
	testOrigin = "https://login.example:8443"
)

var ceremonyStart = time.Date(2031, 5, 6, 7, 0, 0, 0, time.UTC)

func newTestPasskeys(t *testing.T, port int) *Passkeys {
	t.Helper()
	p, err := NewPasskeys(PasskeyConfig{RPID: testRPID, Port: port, DisplayName: "Example Bank"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// register adds a passkey of a to u and returns the factor made.
func register(t *testing.T, p *Passkeys, a *passkeytest.Authenticator, u PasskeyUser) store.Factor {
	t.Helper()
	opts, rec, err := p.BeginRegistration(u, testOrigin, "reg:"+u.ID, ceremonyStart)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.FinishRegistration(u, rec, resp, "Laptop", ceremonyStart.Add(time.Minute))
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	return f
}

func TestPasskeyRegisterThenSignIn(t *testing.T) {
	p := newTestPasskeys(t, 8443)
	a := passkeytest.New(testOrigin)
	u := PasskeyUser{ID: "id-alice", Username: "alice", DisplayName: "Alice Liddell"}
	f := register(t, p, a, u)
	if f.Kind != KindPasskey || f.UserID != "id-alice" || f.Name != "Laptop" || f.Counter != 0 ||
		f.ID != PasskeyFactorID(a.Passkeys()[0].ID) || !f.CreatedAt.Equal(ceremonyStart.Add(time.Minute)) {
		t.Fatalf("factor: %+v", f)
	}
	cred, rpID, err := PasskeyCredential(f)
	if err != nil || rpID != testRPID || string(cred.ID) != string(a.Passkeys()[0].ID) || !cred.Flags.UserVerified {
		t.Fatalf("PasskeyCredential: %+v %q %v", cred, rpID, err)
	}
	u.Factors = []store.Factor{{ID: "t1", Kind: "totp", Secret: []byte("x")}, f}

	opts, rec, err := p.BeginLogin(testOrigin, "login:1", "", ceremonyStart)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(opts), "allowCredentials") || !strings.Contains(string(opts), `"userVerification":"required"`) {
		t.Errorf("request options name credentials or do not require user verification: %s", opts)
	}
	if rec.Kind != KindWebAuthn || rec.ID != "login:1" || !rec.ExpiresAt.Equal(ceremonyStart.Add(CeremonyTTL)) {
		t.Errorf("ceremony record: %+v", rec)
	}
	resp, err := a.Get(opts)
	if err != nil {
		t.Fatal(err)
	}
	var asked string
	got, err := p.FinishLogin(rec, resp, func(id string) (PasskeyUser, error) { asked = id; return u, nil }, ceremonyStart.Add(time.Minute))
	if err != nil {
		t.Fatalf("FinishLogin: %v", err)
	}
	if asked != "id-alice" || got.UserID != "id-alice" || got.FactorID != f.ID || got.SignCount != 1 || got.Stored != 0 {
		t.Fatalf("login: %+v (user handle %q)", got, asked)
	}
}

func TestPasskeyRefusals(t *testing.T) {
	p := newTestPasskeys(t, 0)
	a := passkeytest.New(testOrigin)
	u := PasskeyUser{ID: "id-alice", Username: "alice"}
	u.Factors = []store.Factor{register(t, p, a, u)}
	find := func(id string) (PasskeyUser, error) {
		if id != u.ID {
			return PasskeyUser{}, store.ErrNotFound
		}
		return u, nil
	}
	type ceremonyCase struct {
		name  string
		tweak func(a *passkeytest.Authenticator, rec *store.Record, resp *[]byte)
	}
	cases := []ceremonyCase{
		{"another origin", func(a *passkeytest.Authenticator, _ *store.Record, _ *[]byte) {
			a.Origin = "https://login.example.evil"
		}},
		{"another port than the ceremony's", func(a *passkeytest.Authenticator, _ *store.Record, _ *[]byte) {
			a.Origin = "https://login.example:9443"
		}},
		{"no user verification", func(a *passkeytest.Authenticator, _ *store.Record, _ *[]byte) { a.SkipUV = true }},
		{"expired ceremony", func(_ *passkeytest.Authenticator, rec *store.Record, _ *[]byte) { rec.ExpiresAt = ceremonyStart }},
		{"a registration ceremony", func(_ *passkeytest.Authenticator, rec *store.Record, _ *[]byte) {
			var c ceremony
			_ = json.Unmarshal(rec.Payload, &c)
			c.Purpose = purposeRegister
			rec.Payload, _ = json.Marshal(c)
		}},
		{"malformed answer", func(_ *passkeytest.Authenticator, _ *store.Record, resp *[]byte) { *resp = []byte(`{"id":"x"}`) }},
	}
	for _, tc := range cases {
		t.Run("login: "+tc.name, func(t *testing.T) {
			a.Origin, a.SkipUV = testOrigin, false
			opts, rec, err := p.BeginLogin(testOrigin, "login:1", "", ceremonyStart)
			if err != nil {
				t.Fatal(err)
			}
			var resp []byte
			tc.tweak(a, &rec, &resp)
			if resp == nil {
				if resp, err = a.Get(opts); err != nil {
					t.Fatal(err)
				}
			}
			_, err = p.FinishLogin(rec, resp, find, ceremonyStart.Add(time.Minute))
			if !errors.Is(err, ErrPasskeyRefused) {
				t.Fatalf("FinishLogin: %v, want ErrPasskeyRefused", err)
			}
			t.Log(err)
		})
	}
	t.Run("login: another ceremony's challenge", func(t *testing.T) {
		a.Origin, a.SkipUV = testOrigin, false
		opts, _, err := p.BeginLogin(testOrigin, "login:1", "", ceremonyStart)
		if err != nil {
			t.Fatal(err)
		}
		_, other, err := p.BeginLogin(testOrigin, "login:2", "", ceremonyStart)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.FinishLogin(other, resp, find, ceremonyStart); !errors.Is(err, ErrPasskeyRefused) {
			t.Fatalf("FinishLogin: %v, want ErrPasskeyRefused", err)
		}
	})
	t.Run("login: a passkey the user does not have", func(t *testing.T) {
		a.Origin, a.SkipUV = testOrigin, false
		opts, rec, err := p.BeginLogin(testOrigin, "login:1", "", ceremonyStart)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		noKeys := func(string) (PasskeyUser, error) { return PasskeyUser{ID: u.ID, Username: "alice"}, nil }
		if _, err := p.FinishLogin(rec, resp, noKeys, ceremonyStart); !errors.Is(err, ErrPasskeyRefused) {
			t.Fatalf("FinishLogin: %v, want ErrPasskeyRefused", err)
		}
		gone := func(string) (PasskeyUser, error) { return PasskeyUser{}, store.ErrNotFound }
		if _, err := p.FinishLogin(rec, resp, gone, ceremonyStart); !errors.Is(err, ErrPasskeyRefused) {
			t.Fatalf("FinishLogin with the user gone: %v, want ErrPasskeyRefused", err)
		}
		broken := errors.New("store down")
		down := func(string) (PasskeyUser, error) { return PasskeyUser{}, broken }
		if _, err := p.FinishLogin(rec, resp, down, ceremonyStart); !errors.Is(err, broken) || errors.Is(err, ErrPasskeyRefused) {
			t.Fatalf("FinishLogin with the store down: %v, want the store's error", err)
		}
	})
	t.Run("registration: no user verification", func(t *testing.T) {
		b := passkeytest.New(testOrigin)
		b.SkipUV = true
		opts, rec, err := p.BeginRegistration(u, testOrigin, "reg:1", ceremonyStart)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := b.Create(opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.FinishRegistration(u, rec, resp, "", ceremonyStart); !errors.Is(err, ErrPasskeyRefused) {
			t.Fatalf("FinishRegistration: %v, want ErrPasskeyRefused", err)
		}
	})
	t.Run("registration: another user's ceremony", func(t *testing.T) {
		b := passkeytest.New(testOrigin)
		opts, rec, err := p.BeginRegistration(u, testOrigin, "reg:1", ceremonyStart)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := b.Create(opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.FinishRegistration(PasskeyUser{ID: "id-bob", Username: "bob"}, rec, resp, "", ceremonyStart); !errors.Is(err, ErrPasskeyRefused) {
			t.Fatalf("FinishRegistration: %v, want ErrPasskeyRefused", err)
		}
	})
	t.Run("registration: the passkey is excluded", func(t *testing.T) {
		opts, _, err := p.BeginRegistration(u, testOrigin, "reg:1", ceremonyStart)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Create(opts); err == nil {
			t.Fatal("the authenticator made a second passkey for an excluded credential")
		}
	})
}

func TestPasskeyOrigins(t *testing.T) {
	for _, tc := range []struct {
		port   int
		origin string
		ok     bool
	}{
		{0, "https://login.example", true},
		{0, "https://login.example:8443", true},
		{443, "https://login.example", true},
		{443, "https://login.example:443", true},
		{8443, "https://login.example:8443", true},
		{8443, "https://login.example", false},
		{0, "http://login.example", false},
		{0, "https://bank.example", false},
		{0, "https://login.example.evil", false},
		{0, "https://login.example/path", false},
		{0, "https://user@login.example", false},
		{0, "https://login.example?x=1", false},
	} {
		p := newTestPasskeys(t, tc.port)
		_, _, err := p.BeginLogin(tc.origin, "x", "", ceremonyStart)
		if (err == nil) != tc.ok {
			t.Errorf("port %d, origin %s: %v, want ok=%v", tc.port, tc.origin, err, tc.ok)
		}
	}
	p := newTestPasskeys(t, 0)
	if got := p.Origin(443); got != "https://login.example" {
		t.Errorf("Origin(443) = %s", got)
	}
	if got := p.Origin(8443); got != "https://login.example:8443" {
		t.Errorf("Origin(8443) = %s", got)
	}
}

func TestNewPasskeysRefusesBadConfig(t *testing.T) {
	for _, cfg := range []PasskeyConfig{
		{RPID: "", DisplayName: "Bank"},
		{RPID: "127.0.0.1", DisplayName: "Bank"},
		{RPID: "login.example:8443", DisplayName: "Bank"},
		{RPID: "https://login.example", DisplayName: "Bank"},
		{RPID: "login.example", Port: 70000, DisplayName: "Bank"},
		{RPID: "login.example"},
	} {
		if _, err := NewPasskeys(cfg, rand.Reader); err == nil {
			t.Errorf("NewPasskeys(%+v) accepted", cfg)
		}
	}
	if _, err := NewPasskeys(PasskeyConfig{RPID: "login.example", DisplayName: "Bank"}, nil); err == nil {
		t.Error("NewPasskeys accepted no randomness")
	}
}

func TestPasskeyUserHandleBounds(t *testing.T) {
	p := newTestPasskeys(t, 0)
	for _, id := range []string{"", strings.Repeat("x", 65)} {
		if _, _, err := p.BeginRegistration(PasskeyUser{ID: id, Username: "alice"}, testOrigin, "r", ceremonyStart); err == nil {
			t.Errorf("a user ID of %d bytes became a user handle", len(id))
		}
	}
}

func TestPasskeyCeremonyUsesInjectedRandomness(t *testing.T) {
	p, err := NewPasskeys(PasskeyConfig{RPID: testRPID, DisplayName: "Bank"}, strings.NewReader(strings.Repeat("\x01", challengeLen)))
	if err != nil {
		t.Fatal(err)
	}
	opts, _, err := p.BeginLogin(testOrigin, "x", "", ceremonyStart)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(opts), `"challenge":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"`) {
		t.Errorf("challenge not from the injected source: %s", opts)
	}
	if _, _, err := p.BeginLogin(testOrigin, "x", "", ceremonyStart); err == nil {
		t.Error("a ceremony began with the randomness used up")
	}
}

func TestCheckSignCount(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stored      int64
		got         uint32
		advance, ok bool
	}{
		{"no counter", 0, 0, false, true},
		{"first count", 0, 1, true, true},
		{"counts up", 5, 6, true, true},
		{"jumps up", 5, 900, true, true},
		{"same count again", 5, 5, false, false},
		{"goes back", 5, 4, false, false},
		{"drops to zero", 5, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			advance, ok := CheckSignCount(tc.stored, tc.got)
			if advance != tc.advance || ok != tc.ok {
				t.Errorf("CheckSignCount(%d, %d) = %v, %v; want %v, %v", tc.stored, tc.got, advance, ok, tc.advance, tc.ok)
			}
		})
	}
}

func TestPasskeyCredentialRefusesOtherFactors(t *testing.T) {
	for _, f := range []store.Factor{
		{ID: "f", Kind: "totp", Secret: []byte(`{}`)},
		{ID: "f", Kind: KindPasskey, Secret: []byte(`not json`)},
		{ID: "f", Kind: KindPasskey, Secret: []byte(`{"v":2,"rp_id":"login.example","credential":{"id":"AQ"}}`)},
		{ID: "f", Kind: KindPasskey, Secret: []byte(`{"v":1,"rp_id":"login.example","credential":{}}`)},
	} {
		if _, _, err := PasskeyCredential(f); err == nil {
			t.Errorf("PasskeyCredential(%s %s) accepted", f.Kind, f.Secret)
		}
	}
}

// A passkey made for another relying party (the login host renamed) is not
// offered and cannot sign in here.
func TestPasskeyOfAnotherRelyingPartyIsIgnored(t *testing.T) {
	old, err := NewPasskeys(PasskeyConfig{RPID: "old.example", DisplayName: "Bank"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := passkeytest.New("https://old.example")
	u := PasskeyUser{ID: "id-alice", Username: "alice"}
	opts, rec, err := old.BeginRegistration(u, "https://old.example", "r", ceremonyStart)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := old.FinishRegistration(u, rec, resp, "", ceremonyStart)
	if err != nil {
		t.Fatal(err)
	}
	u.Factors = []store.Factor{f}
	p := newTestPasskeys(t, 0)
	opts, _, err = p.BeginRegistration(u, testOrigin, "r", ceremonyStart)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(opts), "excludeCredentials") {
		t.Errorf("a passkey of another relying party is excluded: %s", opts)
	}
}

// FuzzPasskeyFinishLogin feeds FinishLogin arbitrary answers: anything but
// the authenticator's own answer is refused, and nothing panics.
func FuzzPasskeyFinishLogin(f *testing.F) {
	p, err := NewPasskeys(PasskeyConfig{RPID: testRPID, DisplayName: "Example Bank"}, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	a := passkeytest.New(testOrigin)
	u := PasskeyUser{ID: "id-alice", Username: "alice"}
	opts, rec, err := p.BeginRegistration(u, testOrigin, "r", ceremonyStart)
	if err != nil {
		f.Fatal(err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		f.Fatal(err)
	}
	fa, err := p.FinishRegistration(u, rec, resp, "", ceremonyStart)
	if err != nil {
		f.Fatal(err)
	}
	u.Factors = []store.Factor{fa}
	opts, login, err := p.BeginLogin(testOrigin, "l", "", ceremonyStart)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := a.Get(opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AQ","rawId":"AQ","type":"public-key","response":{}}`))
	find := func(id string) (PasskeyUser, error) {
		if id != u.ID {
			return PasskeyUser{}, store.ErrNotFound
		}
		return u, nil
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		got, err := p.FinishLogin(login, answer, find, ceremonyStart)
		switch {
		case bytes.Equal(answer, valid):
			if err != nil || got.UserID != u.ID {
				t.Fatalf("the authenticator's answer: %+v %v", got, err)
			}
		case err == nil:
			// Only a re-encoding of the same signed answer can verify.
			if got.UserID != u.ID || got.FactorID != fa.ID {
				t.Fatalf("an answer verified for %+v", got)
			}
		case !errors.Is(err, ErrPasskeyRefused):
			t.Fatalf("FinishLogin: %v, want ErrPasskeyRefused", err)
		}
	})
}
