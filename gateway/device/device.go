// Package device remembers browsers: after a step-up passes, the person may
// register the browser they are on, and a registered browser skips the
// step-up at later logins (the password is still asked). The browser holds a
// random secret in a host-only cookie; the store keeps its hash, bound to the
// user, with a lifetime from the policy data.
package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// Cookie holds a registered device's secret.
const Cookie = "__Host-portcullis-device"

// Store is what the registry keeps devices in.
type Store interface {
	AddDevice(ctx context.Context, d store.Device) error
	DeviceByID(ctx context.Context, id string, now time.Time) (store.Device, error)
	TouchDevice(ctx context.Context, id string, at time.Time) error
	ListDevices(ctx context.Context, userID string, now time.Time) ([]store.Device, error)
	DeleteDevice(ctx context.Context, userID, id string) error
}

// Registry registers and recognises devices.
type Registry struct {
	store Store
	now   func() time.Time
	rand  io.Reader
}

// New returns a Registry over st.
func New(st Store, now func() time.Time, rand io.Reader) *Registry {
	return &Registry{store: st, now: now, rand: rand}
}

// Recognise returns the device facts for a login of userID from r: whether r
// carries the cookie of a live device registered to that user, and when it
// was registered, with the device's ID (empty when it is not recognised).
// The lookup is made whatever userID is (even empty, for an unknown
// username), so that its cost says nothing about the account. A recognised
// device's last use is recorded.
func (g *Registry) Recognise(ctx context.Context, r *http.Request, userID string) (policies.Device, string, error) {
	c, err := r.Cookie(Cookie)
	if err != nil || !web.ValidToken(c.Value) {
		return policies.Device{}, "", nil
	}
	now := g.now()
	d, err := g.store.DeviceByID(ctx, web.TokenID(c.Value), now)
	if errors.Is(err, store.ErrNotFound) {
		return policies.Device{}, "", nil
	}
	if err != nil {
		return policies.Device{}, "", fmt.Errorf("recognise device: %w", err)
	}
	if userID == "" || d.UserID != userID {
		return policies.Device{}, "", nil
	}
	if err := g.store.TouchDevice(ctx, d.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		return policies.Device{}, "", fmt.Errorf("recognise device: %w", err)
	}
	return policies.Device{Recognised: true, RegisteredAt: d.CreatedAt.Unix()}, d.ID, nil
}

// Registration is a device about to be registered: its ID is known before
// it is stored, so that the session its login opens can name it.
type Registration struct {
	Device   store.Device
	token    string
	lifetime time.Duration
}

// Prepare makes the registration of the browser of r as a device of user
// for lifetime; Register stores it.
func (g *Registry) Prepare(r *http.Request, userID string, lifetime time.Duration) (Registration, error) {
	if lifetime <= 0 {
		return Registration{}, errors.New("register device: no lifetime")
	}
	token, id, err := web.NewToken(g.rand)
	if err != nil {
		return Registration{}, err
	}
	now := g.now()
	return Registration{token: token, lifetime: lifetime, Device: store.Device{ID: id, UserID: userID, Name: Name(r.UserAgent()),
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(lifetime)}}, nil
}

// Register records reg's device and sets its cookie on w.
func (g *Registry) Register(ctx context.Context, w http.ResponseWriter, reg Registration) (store.Device, error) {
	if reg.token == "" {
		return store.Device{}, errors.New("register device: not prepared")
	}
	d := reg.Device
	if err := g.store.AddDevice(ctx, d); err != nil {
		return store.Device{}, fmt.Errorf("register device: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: Cookie, Value: reg.token, Path: "/", MaxAge: int(reg.lifetime / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return d, nil
}

// List returns the user's live devices, most recently used first.
func (g *Registry) List(ctx context.Context, userID string) ([]store.Device, error) {
	return g.store.ListDevices(ctx, userID, g.now())
}

// Remove deletes one of the user's devices; store.ErrNotFound when it is not
// theirs. The next login from it asks for the step-up again.
func (g *Registry) Remove(ctx context.Context, userID, id string) error {
	return g.store.DeleteDevice(ctx, userID, id)
}

// Name describes a browser from its User-Agent for the device list: browser
// and platform ("Firefox on Windows"), or "Unknown browser".
func Name(ua string) string {
	browser := ""
	switch {
	case strings.Contains(ua, "Edg/"):
		browser = "Edge"
	case strings.Contains(ua, "OPR/"):
		browser = "Opera"
	case strings.Contains(ua, "Firefox/"):
		browser = "Firefox"
	case strings.Contains(ua, "Chrome/") || strings.Contains(ua, "Chromium/") || strings.Contains(ua, "CriOS/"):
		browser = "Chrome"
	case strings.Contains(ua, "Safari/"):
		browser = "Safari"
	}
	platform := ""
	switch {
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad"):
		platform = "iOS"
	case strings.Contains(ua, "Android"):
		platform = "Android"
	case strings.Contains(ua, "Windows"):
		platform = "Windows"
	case strings.Contains(ua, "Mac OS X") || strings.Contains(ua, "Macintosh"):
		platform = "macOS"
	case strings.Contains(ua, "CrOS"):
		platform = "ChromeOS"
	case strings.Contains(ua, "Linux"):
		platform = "Linux"
	}
	switch {
	case browser != "" && platform != "":
		return browser + " on " + platform
	case browser != "":
		return browser
	case platform != "":
		return "A browser on " + platform
	}
	return "Unknown browser"
}
