package credential

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/portcullis/portcullis/gateway/store"
)

// Passkeys (WebAuthn) are the one credential here that is a ceremony rather
// than a check: Begin makes a challenge and the options the browser passes
// to navigator.credentials, the person's authenticator signs, and Finish
// verifies the answer against what Begin kept. Begin returns what to keep as
// a store.Record of kind KindWebAuthn that lives CeremonyTTL; the caller
// puts it and, at Finish, takes it (TakeRecord), so a challenge is answered
// once at most.
//
// Every ceremony requires user verification (a PIN or biometric on the
// authenticator, not only a touch) and asks for a discoverable credential,
// so that a passkey can sign in without a username. Attestation is not
// asked for: the gateway trusts the key it is given at registration, made
// inside a session with a fresh step-up, not a statement about the model of
// authenticator.
const (
	// KindPasskey is the store.Factor kind of a passkey. Its Secret is
	// the credential record (see PasskeyCredential) and its Counter the
	// signature count last seen.
	KindPasskey = "passkey"
	// KindWebAuthn is the store.Record kind that keeps a ceremony between
	// Begin and Finish.
	KindWebAuthn = "webauthn"
	// CeremonyTTL is how long a ceremony may take, from Begin to Finish.
	CeremonyTTL = 5 * time.Minute

	passkeySecretVersion = 1
	challengeLen         = 32
	// maxUserHandleLen is WebAuthn's limit on a user handle, in bytes.
	maxUserHandleLen = 64
)

// ErrPasskeyRefused wraps every reason a browser's answer does not verify:
// malformed, another origin or relying party, a challenge that is not the
// ceremony's, no user verification, a bad signature, an unknown credential.
// Any other error from Finish is a failure of the gateway's own data.
var ErrPasskeyRefused = errors.New("passkey refused")

// PasskeyConfig is the relying party: the host passkeys are bound to.
type PasskeyConfig struct {
	// RPID is the relying party ID, the host name the passkeys are made
	// for (the login host). Passkeys work on that host only.
	RPID string
	// Port is the HTTPS port browsers reach RPID on. 0 means the port
	// each ceremony's origin names, as gateway.Config.PublicPort does.
	Port int
	// DisplayName is the name authenticators show for the relying party
	// ("Example Bank").
	DisplayName string
}

// Passkeys runs WebAuthn ceremonies for one relying party. It keeps no
// state and is safe for concurrent use if its randomness source is.
type Passkeys struct {
	cfg  PasskeyConfig
	rand io.Reader
}

// NewPasskeys checks cfg and returns the relying party. Challenges are drawn
// from rand.
func NewPasskeys(cfg PasskeyConfig, rand io.Reader) (*Passkeys, error) {
	if err := protocol.ValidateRPID(cfg.RPID); err != nil || cfg.RPID == "" {
		return nil, fmt.Errorf("passkeys: relying party ID %q: not a host name", cfg.RPID)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("passkeys: port %d is not a port", cfg.Port)
	}
	if cfg.DisplayName == "" {
		return nil, errors.New("passkeys: a display name is required")
	}
	if rand == nil {
		return nil, errors.New("passkeys: no randomness source")
	}
	return &Passkeys{cfg: cfg, rand: rand}, nil
}

// RPID is the host the passkeys are bound to.
func (p *Passkeys) RPID() string { return p.cfg.RPID }

// Origin is the origin browsers sign ceremonies for when they reach the
// relying party on port: 443 (or 0, an unknown port) is left out, as
// browsers do.
func (p *Passkeys) Origin(port int) string {
	if port == 443 || port == 0 {
		return "https://" + p.cfg.RPID
	}
	return "https://" + net.JoinHostPort(p.cfg.RPID, strconv.Itoa(port))
}

// checkOrigin reports whether origin is the relying party's: https, its
// host, and its port.
func (p *Passkeys) checkOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "https" || u.Hostname() != p.cfg.RPID || u.Path != "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("passkeys: %q is not an origin of %s", origin, p.cfg.RPID)
	}
	port := 443
	if s := u.Port(); s != "" {
		if port, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("passkeys: %q: bad port", origin)
		}
	}
	if p.cfg.Port != 0 && port != p.cfg.Port {
		return fmt.Errorf("passkeys: %q is not on port %d", origin, p.cfg.Port)
	}
	return nil
}

// relyingParty is the library's relying party for one origin: ceremonies
// are bound to the origin they began at.
func (p *Passkeys) relyingParty(origin string) (*webauthn.WebAuthn, error) {
	if err := p.checkOrigin(origin); err != nil {
		return nil, err
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  p.cfg.RPID,
		RPDisplayName:         p.cfg.DisplayName,
		RPOrigins:             []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationRequired,
		},
		// The ceremony's record expires on the injected clock; the
		// library's own (wall-clock) enforcement stays off.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return wa, nil
}

// PasskeyUser is the profile a ceremony is for, with its factors (those of
// other kinds are ignored). Its ID is the WebAuthn user handle, so it must
// be 1 to 64 bytes; the handle is what a discoverable passkey gives back at
// sign-in.
type PasskeyUser struct {
	ID          string
	Username    string
	DisplayName string
	Factors     []store.Factor
}

// waUser is a PasskeyUser as the library sees it.
type waUser struct {
	u     PasskeyUser
	creds []webauthn.Credential
	// factorIDs are the factors behind creds, index for index.
	factorIDs []string
	counters  []int64
}

func (p *Passkeys) adapt(u PasskeyUser) (*waUser, error) {
	if n := len(u.ID); n == 0 || n > maxUserHandleLen {
		return nil, fmt.Errorf("passkeys: a user ID of %d bytes cannot be a user handle", n)
	}
	w := &waUser{u: u}
	for _, f := range u.Factors {
		if f.Kind != KindPasskey {
			continue
		}
		c, rpID, err := PasskeyCredential(f)
		if err != nil {
			return nil, err
		}
		if rpID != p.cfg.RPID {
			continue // made for another relying party: unusable here
		}
		w.creds = append(w.creds, c)
		w.factorIDs = append(w.factorIDs, f.ID)
		w.counters = append(w.counters, f.Counter)
	}
	return w, nil
}

func (w *waUser) WebAuthnID() []byte { return []byte(w.u.ID) }
func (w *waUser) WebAuthnName() string {
	return w.u.Username
}

func (w *waUser) WebAuthnDisplayName() string {
	if w.u.DisplayName != "" {
		return w.u.DisplayName
	}
	return w.u.Username
}

func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// ceremony is a KindWebAuthn record's payload.
type ceremony struct {
	// Purpose is "register" or "login": a ceremony is finished only as
	// what it began as.
	Purpose string               `json:"purpose"`
	Origin  string               `json:"origin"`
	Session webauthn.SessionData `json:"session"`
}

const (
	purposeRegister = "register"
	purposeLogin    = "login"
)

func (p *Passkeys) challenge() ([]byte, error) {
	b := make([]byte, challengeLen)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return nil, fmt.Errorf("passkeys: challenge: %w", err)
	}
	return b, nil
}

func ceremonyRecord(id, subject string, c ceremony, now time.Time) (store.Record, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return store.Record{}, fmt.Errorf("passkeys: %w", err)
	}
	return store.Record{ID: id, Kind: KindWebAuthn, Subject: subject, Payload: payload, ExpiresAt: now.Add(CeremonyTTL)}, nil
}

func readCeremony(rec store.Record, purpose string, now time.Time) (ceremony, error) {
	var c ceremony
	if rec.Kind != KindWebAuthn || !now.Before(rec.ExpiresAt) {
		return c, fmt.Errorf("%w: no live ceremony", ErrPasskeyRefused)
	}
	if err := json.Unmarshal(rec.Payload, &c); err != nil {
		return c, fmt.Errorf("passkeys: ceremony: %w", err)
	}
	if c.Purpose != purpose {
		return c, fmt.Errorf("%w: a %s ceremony finished as %s", ErrPasskeyRefused, c.Purpose, purpose)
	}
	return c, nil
}

// Options are what the browser passes to navigator.credentials.create() or
// .get(): {"publicKey": {...}} with binary members in base64url.
type Options = json.RawMessage

// BeginRegistration starts adding a passkey to u at origin (the page's,
// "https://host[:port]"). It answers the creation options, which exclude
// the passkeys u has already, and the record to keep under recordID until
// FinishRegistration (its Subject is u.ID).
func (p *Passkeys) BeginRegistration(u PasskeyUser, origin, recordID string, now time.Time) (Options, store.Record, error) {
	wa, err := p.relyingParty(origin)
	if err != nil {
		return nil, store.Record{}, err
	}
	w, err := p.adapt(u)
	if err != nil {
		return nil, store.Record{}, err
	}
	chal, err := p.challenge()
	if err != nil {
		return nil, store.Record{}, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(w.creds))
	for i, c := range w.creds {
		exclude[i] = c.Descriptor()
	}
	creation, session, err := wa.BeginRegistration(w,
		webauthn.WithExclusions(exclude),
		webauthn.WithRegistrationOrigin(origin),
		func(o *protocol.PublicKeyCredentialCreationOptions) error { o.Challenge = chal; return nil },
	)
	if err != nil {
		return nil, store.Record{}, fmt.Errorf("passkeys: begin registration: %w", refusal(err))
	}
	return p.begun(creation, purposeRegister, origin, recordID, u.ID, session, now)
}

func (p *Passkeys) begun(options any, purpose, origin, recordID, subject string, session *webauthn.SessionData, now time.Time) (Options, store.Record, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, store.Record{}, fmt.Errorf("passkeys: options: %w", err)
	}
	rec, err := ceremonyRecord(recordID, subject, ceremony{Purpose: purpose, Origin: origin, Session: *session}, now)
	if err != nil {
		return nil, store.Record{}, err
	}
	return opts, rec, nil
}

// FinishRegistration verifies the browser's answer (the JSON of the
// PublicKeyCredential that navigator.credentials.create() returned) against
// the ceremony rec, taken from the store, for u, and returns the new passkey
// as a factor named name, to add. The factor's ID is derived from the
// credential ID, so the same credential cannot be stored twice (the store
// answers ErrConflict).
func (p *Passkeys) FinishRegistration(u PasskeyUser, rec store.Record, response []byte, name string, now time.Time) (store.Factor, error) {
	c, err := readCeremony(rec, purposeRegister, now)
	if err != nil {
		return store.Factor{}, err
	}
	if rec.Subject != u.ID {
		return store.Factor{}, fmt.Errorf("%w: the ceremony is another user's", ErrPasskeyRefused)
	}
	wa, err := p.relyingParty(c.Origin)
	if err != nil {
		return store.Factor{}, err
	}
	w, err := p.adapt(u)
	if err != nil {
		return store.Factor{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return store.Factor{}, fmt.Errorf("%w: %w", ErrPasskeyRefused, refusal(err))
	}
	cred, err := wa.CreateCredential(w, c.Session, parsed)
	if err != nil {
		return store.Factor{}, fmt.Errorf("%w: %w", ErrPasskeyRefused, refusal(err))
	}
	if f := parsed.Response.AttestationObject.AuthData.Flags; !f.HasUserPresent() || !f.HasUserVerified() {
		return store.Factor{}, fmt.Errorf("%w: the authenticator did not verify the user", ErrPasskeyRefused)
	}
	return p.PasskeyFactor(u.ID, name, *cred, now)
}

// BeginLogin starts a sign-in with a discoverable passkey at origin: the
// request options carry no credential list, so they say nothing about any
// account, and the authenticator offers the passkeys it holds for the
// relying party. subject is kept in the record for the caller to check at
// Finish (the username the person typed, or "").
func (p *Passkeys) BeginLogin(origin, recordID, subject string, now time.Time) (Options, store.Record, error) {
	wa, err := p.relyingParty(origin)
	if err != nil {
		return nil, store.Record{}, err
	}
	chal, err := p.challenge()
	if err != nil {
		return nil, store.Record{}, err
	}
	assertion, session, err := wa.BeginDiscoverableLogin(webauthn.WithChallenge(chal), webauthn.WithLoginOrigin(origin),
		webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, store.Record{}, fmt.Errorf("passkeys: begin login: %w", refusal(err))
	}
	return p.begun(assertion, purposeLogin, origin, recordID, subject, session, now)
}

// PasskeyLogin is a verified sign-in with a passkey.
type PasskeyLogin struct {
	// UserID is the profile the passkey belongs to (its user handle).
	UserID string
	// FactorID is the passkey's factor.
	FactorID string
	// SignCount is the authenticator's signature count in this assertion
	// and Stored the count the factor had; see CheckSignCount.
	SignCount uint32
	Stored    int64
}

// FinishLogin verifies the browser's answer (the JSON of the
// PublicKeyCredential that navigator.credentials.get() returned) against the
// ceremony rec, taken from the store. find loads the profile whose ID is the
// passkey's user handle; an error that wraps store.ErrNotFound is a refusal,
// any other is returned as it is. The signature count is not judged here:
// the caller settles it with CheckSignCount and the store's AdvanceFactor.
func (p *Passkeys) FinishLogin(rec store.Record, response []byte, find func(userID string) (PasskeyUser, error), now time.Time) (PasskeyLogin, error) {
	c, err := readCeremony(rec, purposeLogin, now)
	if err != nil {
		return PasskeyLogin{}, err
	}
	wa, err := p.relyingParty(c.Origin)
	if err != nil {
		return PasskeyLogin{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return PasskeyLogin{}, fmt.Errorf("%w: %w", ErrPasskeyRefused, refusal(err))
	}
	var lookupErr error
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := find(string(userHandle))
		if err == nil {
			var w *waUser
			if w, err = p.adapt(u); err == nil {
				return w, nil
			}
		}
		lookupErr = err
		return nil, err
	}
	user, cred, err := wa.ValidatePasskeyLogin(handler, c.Session, parsed)
	if lookupErr != nil && !errors.Is(lookupErr, store.ErrNotFound) {
		return PasskeyLogin{}, fmt.Errorf("passkeys: find the passkey's user: %w", lookupErr)
	}
	if err != nil {
		return PasskeyLogin{}, fmt.Errorf("%w: %w", ErrPasskeyRefused, refusal(err))
	}
	if f := parsed.Response.AuthenticatorData.Flags; !f.HasUserPresent() || !f.HasUserVerified() {
		return PasskeyLogin{}, fmt.Errorf("%w: the authenticator did not verify the user", ErrPasskeyRefused)
	}
	w := user.(*waUser)
	for i, known := range w.creds {
		if bytes.Equal(known.ID, cred.ID) {
			return PasskeyLogin{UserID: w.u.ID, FactorID: w.factorIDs[i],
				SignCount: parsed.Response.AuthenticatorData.Counter, Stored: w.counters[i]}, nil
		}
	}
	return PasskeyLogin{}, fmt.Errorf("%w: unknown credential", ErrPasskeyRefused)
}

// CheckSignCount judges an assertion's signature count against the one
// stored with the passkey. A count that goes up must be recorded with the
// store's compare-and-set (advance), and the sign-in stands only if that
// step reports it advanced the count: of two uses of one count, one wins.
// A count that stays or goes back means the credential may have been cloned
// and is refused (ok false). An authenticator that keeps no count (most
// synced passkeys) sends 0 every time; 0 after a stored 0 is accepted and
// nothing is advanced: for such a passkey the single-use challenge is the
// only replay guard, and a clone cannot be told apart.
func CheckSignCount(stored int64, got uint32) (advance, ok bool) {
	switch {
	case got == 0 && stored == 0:
		return false, true
	case int64(got) > stored:
		return true, true
	}
	return false, false
}

// passkeySecret is a passkey factor's Secret.
type passkeySecret struct {
	V int `json:"v"`
	// RPID is the relying party the credential was made for: a passkey
	// is usable only where the relying party is the same.
	RPID       string              `json:"rp_id"`
	Credential webauthn.Credential `json:"credential"`
}

// PasskeyFactor turns a credential made by a registration into the factor
// that keeps it: the credential record as JSON in Secret, the signature
// count in Counter, and an ID derived from the credential ID.
func (p *Passkeys) PasskeyFactor(userID, name string, c webauthn.Credential, now time.Time) (store.Factor, error) {
	if len(c.ID) == 0 {
		return store.Factor{}, errors.New("passkeys: a credential without an ID")
	}
	secret, err := json.Marshal(passkeySecret{V: passkeySecretVersion, RPID: p.cfg.RPID, Credential: c})
	if err != nil {
		return store.Factor{}, fmt.Errorf("passkeys: %w", err)
	}
	return store.Factor{ID: PasskeyFactorID(c.ID), UserID: userID, Kind: KindPasskey, Name: name, Secret: secret,
		Counter: int64(c.Authenticator.SignCount), CreatedAt: now, LastUsedAt: now}, nil
}

// PasskeyFactorID is the ID of the factor that keeps the credential with
// this credential ID.
func PasskeyFactorID(credentialID []byte) string {
	sum := sha256.Sum256(credentialID)
	return "passkey-" + hex.EncodeToString(sum[:])
}

// PasskeyCredential reads the credential a passkey factor keeps, with the
// factor's Counter as its signature count, and the relying party it was
// made for.
func PasskeyCredential(f store.Factor) (webauthn.Credential, string, error) {
	var s passkeySecret
	if f.Kind != KindPasskey {
		return webauthn.Credential{}, "", fmt.Errorf("passkeys: factor %s is a %s", f.ID, f.Kind)
	}
	if err := json.Unmarshal(f.Secret, &s); err != nil || s.V != passkeySecretVersion || len(s.Credential.ID) == 0 {
		return webauthn.Credential{}, "", fmt.Errorf("passkeys: factor %s: unreadable credential", f.ID)
	}
	if f.Counter >= 0 && f.Counter <= int64(^uint32(0)) {
		s.Credential.Authenticator.SignCount = uint32(f.Counter)
	}
	return s.Credential, s.RPID, nil
}

// refusal makes a library error say what its details say: the library's
// errors print a generic line and keep the reason in DevInfo.
func refusal(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Errorf("%s: %s", pe.Details, pe.DevInfo)
	}
	return err
}
