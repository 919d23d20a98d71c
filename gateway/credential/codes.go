package credential

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

const (
	// CodeDigits is the length of a security code.
	CodeDigits = 6
	// MinCodeKeyLen is the shortest key Codes accepts, in bytes.
	MinCodeKeyLen = 32

	codeSpace = 1_000_000 // 10^CodeDigits
	// maxTypedCodeLen bounds what is normalised: a typed code with its
	// separators is never longer than this.
	maxTypedCodeLen = 64
	// maxRandomTries bounds rejection sampling. A working source rejects a
	// draw with probability below 2^-12, so this many rejections in a row
	// means the source is broken, not unlucky.
	maxRandomTries = 64
	// codeSealContext separates these MACs from anything else the key
	// might ever be used for.
	codeSealContext = "portcullis security code v1"
)

// ErrRandom reports a randomness source that fails or keeps returning
// values the sampler must reject.
var ErrRandom = errors.New("random source unusable")

// Codes generates the one-time security codes sent by text message, voice
// call or email, and seals them for storage.
//
// The code itself is never stored or logged: the caller sends it, keeps
// only what Seal returns (with its expiry), and later asks Match. Single
// use, expiry and the attempt limit belong to the store's atomic steps, not
// to Codes. A Codes is safe for concurrent use if its rand is
// (crypto/rand.Reader is).
type Codes struct {
	key  []byte
	rand io.Reader
}

// NewCodes returns a Codes that draws codes from rand and seals them under
// key, a server secret of at least MinCodeKeyLen bytes.
func NewCodes(key []byte, rand io.Reader) (*Codes, error) {
	if len(key) < MinCodeKeyLen {
		return nil, fmt.Errorf("security code: key must be at least %d bytes, got %d", MinCodeKeyLen, len(key))
	}
	if rand == nil {
		return nil, errors.New("security code: no randomness source")
	}
	return &Codes{key: append([]byte(nil), key...), rand: rand}, nil
}

// Generate returns a fresh code of CodeDigits decimal digits, uniformly
// distributed; leading zeros are kept.
func (c *Codes) Generate() (code string, err error) {
	n, err := randUint32n(c.rand, codeSpace)
	if err != nil {
		return "", fmt.Errorf("security code: %w", err)
	}
	return fmt.Sprintf("%0*d", CodeDigits, n), nil
}

// Seal returns the MAC to store for code, a code as Generate returned it.
// binding names what the code is for and must differ wherever a code must
// not be accepted: build it with CodeBinding from the user ID, the flow ID
// and the purpose. Binding and code are length-prefixed, so no two
// different (binding, code) pairs share a MAC input.
func (c *Codes) Seal(code, binding string) []byte {
	m := hmac.New(sha256.New, c.key)
	var buf []byte
	buf = append(buf, codeSealContext...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(binding)))
	buf = append(buf, binding...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(code)))
	buf = append(buf, code...)
	m.Write(buf)
	return m.Sum(nil)
}

// Match reports whether the code a person typed matches sealed for this
// binding. Spaces and hyphens are ignored; anything else that is not
// exactly CodeDigits ASCII digits is false. The MACs are compared in
// constant time.
func (c *Codes) Match(sealed []byte, code, binding string) bool {
	typed, ok := normalizeTypedCode(code)
	if !ok {
		return false
	}
	return hmac.Equal(sealed, c.Seal(typed, binding))
}

// CodeBinding joins the parts that say what a code is for (typically user
// ID, flow ID and purpose) into one binding for Seal and Match. Each part is
// length-prefixed, so ("ab", "c") and ("a", "bc") give different bindings.
func CodeBinding(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
		b.WriteByte(',')
	}
	return b.String()
}

// normalizeTypedCode strips the separators people type or paste into a
// code (spaces, hyphens and dashes) and reports whether what is left is
// exactly CodeDigits ASCII digits.
func normalizeTypedCode(s string) (string, bool) {
	if len(s) > maxTypedCodeLen {
		return "", false
	}
	var out [CodeDigits]byte
	n := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			if n == CodeDigits {
				return "", false
			}
			out[n] = byte(r)
			n++
		case unicode.IsSpace(r), isDash(r):
		default:
			return "", false
		}
	}
	if n != CodeDigits {
		return "", false
	}
	return string(out[:]), true
}

// isDash reports hyphen-minus and the dashes that phones and word
// processors substitute for it.
func isDash(r rune) bool {
	switch r {
	case '-', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212':
		return true
	}
	return false
}

// randUint32n returns a uniform value in [0, n) from r, rejecting the draws
// at the top of the 32-bit range that would bias a plain modulo.
func randUint32n(r io.Reader, n uint32) (uint32, error) {
	if n == 0 {
		return 0, errors.New("empty range")
	}
	limit := (1 << 32) - (1<<32)%uint64(n) // a multiple of n
	var b [4]byte
	for range maxRandomTries {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrRandom, err)
		}
		if v := binary.BigEndian.Uint32(b[:]); uint64(v) < limit {
			return v % n, nil
		}
	}
	return 0, fmt.Errorf("%w: %d draws in a row rejected", ErrRandom, maxRandomTries)
}
