package assertion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Claims is the content of an assertion. On the wire the times are JWT
// NumericDates (whole seconds since the Unix epoch); a zero time is omitted.
type Claims struct {
	// Issuer (iss) is the gateway's issuer URL.
	Issuer string `json:"iss"`
	// Subject (sub) is the user ID.
	Subject string `json:"sub"`
	// Audience (aud) is the name of the route the request is for. It is a
	// single string; a token whose aud is an array is rejected, so that no
	// assertion is ever valid for two apps.
	Audience  string    `json:"aud"`
	IssuedAt  time.Time `json:"iat"`
	NotBefore time.Time `json:"nbf"`
	Expiry    time.Time `json:"exp"`
	// ID (jti) is random and unique to the assertion.
	ID string `json:"jti"`
	// AuthTime (auth_time) is when the user logged in.
	AuthTime time.Time `json:"auth_time"`
	// AuthMethods (amr) are the authentication methods of the login, as
	// in RFC 8176: "pwd", "otp", ...
	AuthMethods []string `json:"amr"`
	// Username (preferred_username) is the name the user logs in with.
	Username string `json:"preferred_username"`
}

// wireClaims is the JSON form of Claims.
type wireClaims struct {
	Issuer      string      `json:"iss,omitempty"`
	Subject     string      `json:"sub,omitempty"`
	Audience    audience    `json:"aud,omitempty"`
	IssuedAt    numericDate `json:"iat,omitempty"`
	NotBefore   numericDate `json:"nbf,omitempty"`
	Expiry      numericDate `json:"exp,omitempty"`
	ID          string      `json:"jti,omitempty"`
	AuthTime    numericDate `json:"auth_time,omitempty"`
	AuthMethods []string    `json:"amr,omitempty"`
	Username    string      `json:"preferred_username,omitempty"`
}

// MarshalJSON encodes c as a JWT claims set.
func (c Claims) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireClaims{
		Issuer:      c.Issuer,
		Subject:     c.Subject,
		Audience:    audience(c.Audience),
		IssuedAt:    toNumericDate(c.IssuedAt),
		NotBefore:   toNumericDate(c.NotBefore),
		Expiry:      toNumericDate(c.Expiry),
		ID:          c.ID,
		AuthTime:    toNumericDate(c.AuthTime),
		AuthMethods: c.AuthMethods,
		Username:    c.Username,
	})
}

// UnmarshalJSON decodes a JWT claims set. Claims it does not know are
// ignored.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var w wireClaims
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Claims{
		Issuer:      w.Issuer,
		Subject:     w.Subject,
		Audience:    string(w.Audience),
		IssuedAt:    w.IssuedAt.time(),
		NotBefore:   w.NotBefore.time(),
		Expiry:      w.Expiry.time(),
		ID:          w.ID,
		AuthTime:    w.AuthTime.time(),
		AuthMethods: w.AuthMethods,
		Username:    w.Username,
	}
	return nil
}

// numericDate is a JWT NumericDate in whole seconds; zero means absent.
type numericDate int64

func toNumericDate(t time.Time) numericDate {
	if t.IsZero() {
		return 0
	}
	return numericDate(t.Unix())
}

func (n numericDate) time() time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(int64(n), 0).UTC()
}

// UnmarshalJSON accepts a JSON number, fractional or not (RFC 7519 allows
// both), and rejects anything else, strings included.
func (n *numericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("date is not a number")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f < -(1<<53) || f > 1<<53 {
		return fmt.Errorf("date %s is out of range", b)
	}
	*n = numericDate(math.Floor(f))
	return nil
}

// audience is the aud claim, which must be a single string.
type audience string

func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*a = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("aud is not a single string")
	}
	*a = audience(s)
	return nil
}
