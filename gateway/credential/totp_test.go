package credential

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"image/png"
	"net/url"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is the SHA1 secret of RFC 6238's test vectors.
var rfcSecret = []byte("12345678901234567890")

// codeAt is the 6-digit code for secret at t, computed by the library.
func codeAt(t *testing.T, secret []byte, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(base32.StdEncoding.EncodeToString(secret), at, totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestTOTPRFC6238Vector(t *testing.T) {
	at := time.Unix(59, 0)
	eight, err := totp.GenerateCodeCustom(base32.StdEncoding.EncodeToString(rfcSecret), at,
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
	if err != nil || eight != "94287082" {
		t.Fatalf("8-digit code at T=59 = %q, %v; RFC 6238 says 94287082", eight, err)
	}
	// Six digits are the same truncation modulo 10^6.
	if six := codeAt(t, rfcSecret, at); six != "287082" {
		t.Fatalf("6-digit code at T=59 = %q, want 287082", six)
	}
	if step, ok := CheckTOTP(rfcSecret, "287082", at); !ok || step != 1 {
		t.Fatalf("CheckTOTP(287082, T=59) = %d, %v; want step 1, true", step, ok)
	}
}

func TestCheckTOTPWindow(t *testing.T) {
	// RFC 6238's T=1111111109 is 29 s into step 37037036.
	now := time.Unix(1111111109, 0)
	const current = int64(37037036)
	period := int64(TOTPPeriod / time.Second)
	for _, tc := range []struct {
		name   string
		offset int64 // in steps
		ok     bool
	}{
		{"current step", 0, true},
		{"one step behind", -1, true},
		{"one step ahead", 1, true},
		{"two steps behind", -2, false},
		{"two steps ahead", 2, false},
		{"an hour old", -120, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := current + tc.offset
			code := codeAt(t, rfcSecret, time.Unix(step*period, 0))
			got, ok := CheckTOTP(rfcSecret, code, now)
			if ok != tc.ok {
				t.Fatalf("CheckTOTP(code of step %d) ok = %v, want %v", step, ok, tc.ok)
			}
			if ok && got != step {
				t.Fatalf("CheckTOTP(code of step %d) step = %d", step, got)
			}
			if !ok && got != 0 {
				t.Fatalf("refused code returned step %d", got)
			}
		})
	}
}

func TestCheckTOTPStepBoundaries(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5a}, TOTPSecretLen)
	start := time.Unix(37037036*30, 0)
	code := codeAt(t, secret, start)
	for _, tc := range []struct {
		name string
		now  time.Time
		step int64
		ok   bool
	}{
		{"first second of its step", start, 37037036, true},
		{"last second of its step", start.Add(29 * time.Second), 37037036, true},
		{"last second of the step before", start.Add(-time.Second), 37037036, true},
		{"first second two steps on", start.Add(60 * time.Second), 0, false},
		{"last second two steps back", start.Add(-31 * time.Second), 0, false},
		{"sub-second part ignored", start.Add(59*time.Second + 999*time.Millisecond), 37037036, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step, ok := CheckTOTP(secret, code, tc.now)
			if ok != tc.ok || step != tc.step {
				t.Fatalf("CheckTOTP at %v = %d, %v; want %d, %v", tc.now.Unix(), step, ok, tc.step, tc.ok)
			}
		})
	}
}

func TestCheckTOTPRejectsMalformedInput(t *testing.T) {
	now := time.Unix(1111111109, 0)
	good := codeAt(t, rfcSecret, now)
	if _, ok := CheckTOTP(rfcSecret, good[:3]+" "+good[3:], now); !ok {
		t.Fatal("code typed with a space refused")
	}
	if _, ok := CheckTOTP(rfcSecret, good[:3]+"-"+good[3:], now); !ok {
		t.Fatal("code typed with a hyphen refused")
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		code   string
	}{
		{"empty", rfcSecret, ""},
		{"five digits", rfcSecret, good[:5]},
		{"seven digits", rfcSecret, good + "0"},
		{"eight-digit RFC code", rfcSecret, "07081804"},
		{"letters", rfcSecret, "abcdef"},
		{"full-width digits", rfcSecret, "１２３４５６"},
		{"code with a sign", rfcSecret, "+" + good[1:]},
		{"nil secret", nil, good},
		{"short secret", rfcSecret[:15], codeAt(t, rfcSecret[:15], now)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if step, ok := CheckTOTP(tc.secret, tc.code, now); ok || step != 0 {
				t.Fatalf("CheckTOTP(%q) = %d, %v; want refused", tc.code, step, ok)
			}
		})
	}
	if _, ok := CheckTOTP(rfcSecret, codeAt(t, rfcSecret, time.Unix(0, 0)), time.Unix(-1, 0)); ok {
		t.Error("a time before 1970 accepted")
	}
}

func TestNewTOTPKey(t *testing.T) {
	seed := bytes.Repeat([]byte{0xa5}, TOTPSecretLen)
	secret, raw, err := NewTOTPKey("Example Bank", "jane.doe@example.com", bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, seed) {
		t.Fatalf("secret = %x, want the %d bytes read from rand", secret, TOTPSecretLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Example Bank:jane.doe@example.com" {
		t.Errorf("URL %q: wrong scheme, type or label", raw)
	}
	for k, want := range map[string]string{
		"secret":    base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed),
		"issuer":    "Example Bank",
		"algorithm": "SHA1",
		"digits":    "6",
		"period":    "30",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("URL %s = %q, want %q", k, got, want)
		}
	}
	// An authenticator app reading the URL produces codes CheckTOTP takes.
	key, err := otp.NewKeyFromURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_750_000_000, 0)
	code, err := totp.GenerateCode(key.Secret(), now)
	if err != nil {
		t.Fatal(err)
	}
	if step, ok := CheckTOTP(secret, code, now); !ok || step != 1_750_000_000/30 {
		t.Fatalf("code from the enrolled key: CheckTOTP = %d, %v", step, ok)
	}

	fresh, _, err := NewTOTPKey("Example Bank", "jane", rand.Reader)
	if err != nil || len(fresh) != TOTPSecretLen {
		t.Fatalf("NewTOTPKey with crypto/rand = %d bytes, %v", len(fresh), err)
	}
	for _, tc := range []struct{ name, issuer, account string }{
		{"no issuer", "", "jane"},
		{"no account", "Example Bank", ""},
		{"colon in issuer", "Example:Bank", "jane"},
		{"colon in account", "Example Bank", "jane:doe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := NewTOTPKey(tc.issuer, tc.account, rand.Reader); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, _, err := NewTOTPKey("Example Bank", "jane", bytes.NewReader(seed[:10])); err == nil {
		t.Error("short randomness accepted")
	}
}

func TestTOTPQRCode(t *testing.T) {
	_, raw, err := NewTOTPKey("Example Bank", "jane", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TOTPQRCode(raw, 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() != 256 || r.Dy() != 256 {
		t.Fatalf("image is %v, want 256×256", r)
	}
	for _, tc := range []struct {
		name, url string
		size      int
	}{
		{"zero size", raw, 0},
		{"huge size", raw, 1 << 20},
		{"too small for the code", raw, 10},
		{"not a URL", "%zz", 256},
		{"hotp URL", "otpauth://hotp/Example:jane?secret=JBSWY3DPEHPK3PXP&counter=0", 256},
		{"no secret", "otpauth://totp/Example:jane?issuer=Example", 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := TOTPQRCode(tc.url, tc.size); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzCheckTOTP(f *testing.F) {
	f.Add("287082", int64(59))
	f.Add("287 082", int64(59))
	f.Add("", int64(0))
	f.Fuzz(func(t *testing.T, code string, unix int64) {
		step, ok := CheckTOTP(rfcSecret, code, time.Unix(unix, 0))
		if !ok {
			return
		}
		if d := step - unix/30; d < -TOTPSkew || d > TOTPSkew {
			t.Fatalf("CheckTOTP(%q, %d) matched step %d, outside the window", code, unix, step)
		}
		if _, valid := normalizeTypedCode(code); !valid {
			t.Fatalf("CheckTOTP accepted malformed code %q", code)
		}
	})
}
