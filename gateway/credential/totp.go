package credential

import (
	"bytes"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"io"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// Authenticator apps: what every common app supports is SHA1, 6 digits and
// a 30-second period, so those are fixed rather than configurable.
const (
	// TOTPSecretLen is the size of an authenticator-app secret, in bytes
	// (RFC 4226 recommends 160 bits).
	TOTPSecretLen = 20
	// TOTPPeriod is the length of one time step.
	TOTPPeriod = 30 * time.Second
	// TOTPSkew is how many steps either side of the current one are
	// accepted, for clock drift and typing time.
	TOTPSkew = 1

	minTOTPSecretLen = 16 // RFC 4226's minimum, 128 bits
	maxQRCodeSize    = 1024
)

var totpOpts = totp.ValidateOpts{
	Period:    uint(TOTPPeriod / time.Second),
	Skew:      TOTPSkew,
	Digits:    otp.DigitsSix,
	Algorithm: otp.AlgorithmSHA1,
}

// NewTOTPKey makes a new authenticator-app secret from rand and the
// otpauth:// URL that enrols it (shown as a QR code, see TOTPQRCode). The
// caller stores secret as a secret and enables the factor only once the
// person has typed a valid code from it. The URL carries the secret too:
// never log it.
func NewTOTPKey(issuer, account string, rand io.Reader) (secret []byte, otpauthURL string, err error) {
	if issuer == "" || account == "" {
		return nil, "", errors.New("totp: issuer and account are required")
	}
	// The URL label is "issuer:account"; a colon in either is ambiguous.
	if strings.Contains(issuer, ":") || strings.Contains(account, ":") {
		return nil, "", errors.New("totp: issuer and account may not contain a colon")
	}
	secret = make([]byte, TOTPSecretLen)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, "", fmt.Errorf("totp: secret: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      totpOpts.Period,
		SecretSize:  TOTPSecretLen,
		Secret:      secret,
		Digits:      totpOpts.Digits,
		Algorithm:   totpOpts.Algorithm,
	})
	if err != nil {
		return nil, "", fmt.Errorf("totp: key: %w", err)
	}
	return secret, key.URL(), nil
}

// TOTPQRCode renders an otpauth:// URL as a size×size PNG QR code for the
// enrolment page.
func TOTPQRCode(otpauthURL string, size int) ([]byte, error) {
	if size < 1 || size > maxQRCodeSize {
		return nil, fmt.Errorf("totp: QR code size must be 1 to %d pixels, got %d", maxQRCodeSize, size)
	}
	key, err := otp.NewKeyFromURL(otpauthURL)
	if err != nil {
		return nil, fmt.Errorf("totp: QR code: %w", err)
	}
	if key.Type() != "totp" || key.Secret() == "" {
		return nil, errors.New("totp: QR code: not an otpauth://totp URL with a secret")
	}
	img, err := key.Image(size, size)
	if err != nil {
		return nil, fmt.Errorf("totp: QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp: QR code: %w", err)
	}
	return buf.Bytes(), nil
}

// CheckTOTP reports whether code is valid for secret at now: the code of
// the current time step or of TOTPSkew steps either side. Spaces and
// hyphens in code are ignored; anything else but 6 ASCII digits, or a
// secret shorter than 128 bits, is false.
//
// step is the time step that matched (Unix time / TOTPPeriod). CheckTOTP
// does not prevent replay: the caller passes step to the store's
// compare-and-set, which refuses a step already used for this account, and
// accepts the login only if that succeeds.
func CheckTOTP(secret []byte, code string, now time.Time) (step int64, ok bool) {
	typed, valid := normalizeTypedCode(code)
	if !valid || len(secret) < minTOTPSecretLen || now.Unix() < 0 {
		return 0, false
	}
	b32 := base32.StdEncoding.EncodeToString(secret)
	period := int64(totpOpts.Period)
	current := now.Unix() / period
	// Try the current step first, so that it wins the (1 in 10^6) case
	// where a neighbouring step has the same code. Every step is computed
	// and compared, so the time taken says nothing about which matched.
	steps := []int64{current}
	for d := int64(1); d <= TOTPSkew; d++ {
		steps = append(steps, current-d, current+d)
	}
	matched := int64(-1)
	for _, s := range steps {
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(b32, uint64(s), hotp.ValidateOpts{Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(typed)) == 1 && matched < 0 {
			matched = s
		}
	}
	if matched < 0 {
		return 0, false
	}
	return matched, true
}
