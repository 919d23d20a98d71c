// Package passkeytest is a software WebAuthn authenticator for tests: it
// answers the options the gateway sends to navigator.credentials.create()
// and .get() the way a browser with a platform authenticator would, with
// ES256 keys, "none" attestation and discoverable credentials. Its fields
// let a test make it misbehave: another origin, no user verification, a
// signature count that goes backwards.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator holds passkeys and signs for them, as a browser and its
// authenticator together do. It is not safe for concurrent use.
type Authenticator struct {
	// Origin is the origin the "browser" puts in the client data: the
	// page's. A phishing page has its own.
	Origin string
	// SkipUV makes the authenticator report a touch without user
	// verification.
	SkipUV bool
	// NoCounter makes the authenticator send a signature count of 0, as
	// most synced passkeys do.
	NoCounter bool
	// Use, when not nil, is the credential ID Get signs with; otherwise
	// the first passkey that the options allow.
	Use []byte

	creds []*Passkey
}

// Passkey is one credential the authenticator holds.
type Passkey struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	Key        *ecdsa.PrivateKey
	// Counter is the signature count of the last signature.
	Counter uint32
}

// New returns an authenticator whose browser is at origin.
func New(origin string) *Authenticator { return &Authenticator{Origin: origin} }

// Passkeys are the credentials the authenticator holds, oldest first.
func (a *Authenticator) Passkeys() []*Passkey { return a.creds }

var b64 = base64.RawURLEncoding

// bytesJSON is a base64url member of the options.
type bytesJSON []byte

func (b *bytesJSON) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := b64.DecodeString(s)
	*b = v
	return err
}

type descriptor struct {
	Type string    `json:"type"`
	ID   bytesJSON `json:"id"`
}

type creationOptions struct {
	PublicKey struct {
		RP struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID bytesJSON `json:"id"`
		} `json:"user"`
		Challenge bytesJSON `json:"challenge"`
		Params    []struct {
			Alg int64 `json:"alg"`
		} `json:"pubKeyCredParams"`
		Exclude []descriptor `json:"excludeCredentials"`
	} `json:"publicKey"`
}

type requestOptions struct {
	PublicKey struct {
		Challenge bytesJSON    `json:"challenge"`
		RPID      string       `json:"rpId"`
		Allow     []descriptor `json:"allowCredentials"`
	} `json:"publicKey"`
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// Create answers creation options (the gateway's {"publicKey": ...}) with
// the JSON of a new PublicKeyCredential, as the page sends it back.
func (a *Authenticator) Create(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("passkeytest: creation options: %w", err)
	}
	pk := o.PublicKey
	es256 := false
	for _, p := range pk.Params {
		es256 = es256 || p.Alg == int64(webauthncose.AlgES256)
	}
	if !es256 || pk.RP.ID == "" || len(pk.Challenge) == 0 || len(pk.User.ID) == 0 {
		return nil, errors.New("passkeytest: the options ask for nothing this authenticator makes")
	}
	for _, ex := range pk.Exclude {
		for _, c := range a.creds {
			if string(c.ID) == string(ex.ID) && c.RPID == pk.RP.ID {
				return nil, errors.New("passkeytest: InvalidStateError: the authenticator holds an excluded credential")
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	c := &Passkey{ID: id, RPID: pk.RP.ID, UserHandle: pk.User.ID, Key: key}
	// A discoverable credential for the same user and relying party
	// replaces the one before, as authenticators do.
	for i, old := range a.creds {
		if old.RPID == c.RPID && string(old.UserHandle) == string(c.UserHandle) {
			a.creds = append(a.creds[:i], a.creds[i+1:]...)
			break
		}
	}
	a.creds = append(a.creds, c)

	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256),
		XCoord:        pub[1:33],
		YCoord:        pub[33:],
	})
	if err != nil {
		return nil, err
	}
	authData := a.authData(pk.RP.ID, flagUP|flagAT, 0)
	authData = append(authData, make([]byte, 16)...) // AAGUID: none
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, cose...)
	attObj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, err
	}
	clientData := a.clientData("webauthn.create", pk.Challenge)
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(id), "rawId": b64.EncodeToString(id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData),
			"attestationObject": b64.EncodeToString(attObj),
			"transports":        []string{"internal"},
		},
	})
}

// Get answers request options with the JSON of an assertion, as the page
// sends it back.
func (a *Authenticator) Get(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("passkeytest: request options: %w", err)
	}
	pk := o.PublicKey
	c := a.pick(pk.RPID, pk.Allow)
	if c == nil {
		return nil, errors.New("passkeytest: NotAllowedError: no passkey for this relying party")
	}
	if !a.NoCounter {
		c.Counter++
	}
	return a.Sign(c, pk.RPID, pk.Challenge, c.Counter)
}

// Sign makes an assertion by c for the challenge with the given signature
// count, whatever the authenticator's state.
func (a *Authenticator) Sign(c *Passkey, rpID string, challenge []byte, counter uint32) ([]byte, error) {
	flags := byte(flagUP)
	authData := a.authData(rpID, flags, counter)
	clientData := a.clientData("webauthn.get", challenge)
	sum := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte(nil), authData...), sum[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData),
			"authenticatorData": b64.EncodeToString(authData),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.UserHandle),
		},
	})
}

func (a *Authenticator) pick(rpID string, allow []descriptor) *Passkey {
	for _, c := range a.creds {
		if c.RPID != rpID {
			continue
		}
		if a.Use != nil && string(c.ID) != string(a.Use) {
			continue
		}
		if len(allow) == 0 {
			return c
		}
		for _, d := range allow {
			if string(d.ID) == string(c.ID) {
				return c
			}
		}
	}
	return nil
}

// authData is the authenticator data's fixed part: the relying party's
// hash, the flags (with UV unless SkipUV) and the signature count.
func (a *Authenticator) authData(rpID string, flags byte, counter uint32) []byte {
	if !a.SkipUV {
		flags |= flagUV
	}
	h := sha256.Sum256([]byte(rpID))
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, counter)
}

func (a *Authenticator) clientData(typ string, challenge []byte) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": a.Origin, "crossOrigin": false})
	return b
}
