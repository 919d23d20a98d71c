// Package config reads Portcullis's YAML configuration file and reports every
// problem in it at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/credential"
)

// File is the configuration file.
type File struct {
	// Source is the file Load read, for re-reading it on SIGHUP; empty for
	// Parse.
	Source string `yaml:"-"`
	// DataDir holds state: the SQLite store, the local CA, certificates.
	DataDir        string   `yaml:"data_dir"`
	Listen         Listen   `yaml:"listen"`
	TLS            TLS      `yaml:"tls"`
	LoginHost      string   `yaml:"login_host"`
	Issuer         string   `yaml:"issuer"`
	Routes         []Route  `yaml:"routes"`
	Store          Store    `yaml:"store"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	Session        Session  `yaml:"session"`
	Identity       Identity `yaml:"identity"`
	Password       Password `yaml:"password"`
	Policies       Policies `yaml:"policies"`
	GeoIP          GeoIP    `yaml:"geoip"`
	Phone          Phone    `yaml:"phone"`
	Codes          Codes    `yaml:"codes"`
	Delivery       Delivery `yaml:"delivery"`
	// Organisation is the name messages to customers sign with ("Example
	// Bank"). Default "Portcullis".
	Organisation string `yaml:"organisation"`
	// SupportPhone is the number people are told to call when they cannot
	// go on online (a locked profile, codes that do not arrive).
	SupportPhone string `yaml:"support_phone"`
	// Directory is where customer records come from, for creating a
	// profile, recovering a username or password and adding an account.
	// Unset, those are not offered online and their pages say so.
	Directory Directory `yaml:"directory"`
	// ForwardAuth configures /.portcullis/auth for a proxy that keeps
	// serving the apps itself (docs/forward-auth.md).
	ForwardAuth ForwardAuth `yaml:"forward_auth"`
	// Brand is the bank's look on every page.
	Brand Brand `yaml:"brand"`
	// ThemeDir is an operator's theme: templates/*.html replace the
	// built-in page templates of the same name, static/ adds to or
	// replaces the style sheet and images.
	ThemeDir string `yaml:"theme_dir"`
	Log      Log    `yaml:"log"`
	// Admin configures the admin API on the admin listener.
	Admin Admin `yaml:"admin"`
}

// Admin configures the admin API (/admin/v1/ on listen.admin,
// docs/operations.md). Without tokens the API is off.
type Admin struct {
	// Tokens are the administrators who may call the API, one entry
	// each: the name is who the audit log says acted, the file holds the
	// bearer token (a secret, mode 0600).
	Tokens []AdminToken `yaml:"tokens"`
}

// AdminToken is one administrator's token.
type AdminToken struct {
	// Name is lowercase letters, digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// File holds the token, at least 32 characters, alone on its line.
	File string `yaml:"file"`
}

// minAdminToken is the shortest admin token accepted, in bytes: 32
// random characters or more.
const minAdminToken = 32

// Token reads the token from its file, refusing one shorter than 32
// characters or holding spaces (a file of several lines, a stray word).
func (t AdminToken) Token() ([]byte, error) {
	b, err := secretValue(readSecret("token", t.File, ""))
	if err != nil {
		return nil, err
	}
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%s is empty", t.File)
	case bytes.ContainsFunc(b, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return nil, fmt.Errorf("%s holds spaces, control characters or several lines; the token is one line", t.File)
	case len(b) < minAdminToken:
		return nil, fmt.Errorf("%s holds %d characters; a token needs at least %d (openssl rand -hex 32)", t.File, len(b), minAdminToken)
	}
	return b, nil
}

// validate checks each token's name and file.
func (a Admin) validate() []Problem {
	var ps []Problem
	seen := map[string]bool{}
	for i, t := range a.Tokens {
		p := fmt.Sprintf("admin.tokens[%d]", i)
		switch {
		case t.Name == "":
			ps = append(ps, Problem{Path: p + ".name", Message: "is required: it is who the audit log says acted"})
		case strings.ContainsFunc(t.Name, func(r rune) bool {
			return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '_' && r != '-'
		}):
			ps = append(ps, Problem{Path: p + ".name", Message: fmt.Sprintf("%q may hold only lowercase letters, digits, '.', '_' and '-'", t.Name)})
		case seen[t.Name]:
			ps = append(ps, Problem{Path: p + ".name", Message: fmt.Sprintf("%q names another token too", t.Name)})
		}
		seen[t.Name] = true
		if t.File == "" {
			ps = append(ps, Problem{Path: p + ".file", Message: "is required (a file holding the token, mode 0600; never inline)"})
		} else if _, err := t.Token(); err != nil {
			ps = append(ps, Problem{Path: p + ".file", Message: strings.TrimPrefix(err.Error(), "token_file: ")})
		}
	}
	return ps
}

// Directory configures the customer records: a file (JSON or CSV) or an
// HTTP lookup, never both. See docs/directory.md.
type Directory struct {
	// File is a customer file, .json or .csv.
	File string `yaml:"file"`
	// URL is the HTTP directory's base URL (https, or http to loopback).
	URL string `yaml:"url"`
	// TokenFile holds the bearer token sent to URL (mode 0600 or
	// stricter); required with URL.
	TokenFile string `yaml:"token_file"`
	// CAFile is a PEM file of the authorities URL's certificate is
	// checked against instead of the system's.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one lookup; default 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// Brand is the bank's name, logo and colours on the pages.
type Brand struct {
	// Name is shown at the top of every page; default organisation.
	Name string `yaml:"name"`
	// Logo is an image file (.svg, .png, .jpg, .webp, .gif) of at most
	// 256 KiB shown beside the name.
	Logo   string      `yaml:"logo"`
	Colors BrandColors `yaml:"colors"`
}

// BrandColors override the pages' colours, each "#rrggbb".
type BrandColors struct {
	Accent     string `yaml:"accent"`
	Ink        string `yaml:"ink"`
	Page       string `yaml:"page"`
	Card       string `yaml:"card"`
	Bad        string `yaml:"bad"`
	ButtonText string `yaml:"button_text"`
}

// Policies says where the Rego policies come from.
type Policies struct {
	// Dir holds policies laid out like the repository's rego/; empty means
	// the policies built into the binary.
	Dir string `yaml:"dir"`
	// Watch reloads Dir when a file changes (a broken edit is refused and
	// the last good policies keep serving). Default true.
	Watch *bool `yaml:"watch"`
	// DecisionLog is a file that receives one JSON line per decision.
	DecisionLog string `yaml:"decision_log"`
	// DecisionLogMaxSize is the size past which the decision log is
	// rotated: bytes, or a number with KB, MB, GB (powers of 1000) or KiB,
	// MiB, GiB (powers of 1024), as "100MB". Empty: never rotated.
	DecisionLogMaxSize string `yaml:"decision_log_max_size"`
	// DecisionLogMaxFiles is how many rotated files (NAME.1 the newest, up
	// to NAME.N) are kept. Default 5.
	DecisionLogMaxFiles int `yaml:"decision_log_max_files"`
	// Bundle is an OPA bundle file (`opa build`) to load the policies
	// from instead of Dir; Watch reloads it when it changes.
	Bundle string `yaml:"bundle"`
	// BundlePublicKey is a PEM public key file; every bundle must carry a
	// signature by it (`opa build --signing-key` or `opa sign`).
	BundlePublicKey string `yaml:"bundle_public_key"`
	// BundleKeyID is the key ID the signature names (default "default").
	BundleKeyID string `yaml:"bundle_key_id"`
	// BundleUnsigned accepts a bundle without a signature; only without
	// bundle_public_key, and not for production.
	BundleUnsigned bool `yaml:"bundle_unsigned"`
	// ShadowDir and ShadowBundle name a candidate policy (a directory, or
	// a bundle verified like Bundle) evaluated beside the live one on every
	// decision and never enforced. Changed with SIGHUP, no restart.
	ShadowDir    string `yaml:"shadow_dir"`
	ShadowBundle string `yaml:"shadow_bundle"`
}

// DecisionLogMaxBytes is DecisionLogMaxSize in bytes, 0 when the log is
// never rotated.
func (p Policies) DecisionLogMaxBytes() (int64, error) {
	if p.DecisionLogMaxSize == "" {
		return 0, nil
	}
	return ParseSize(p.DecisionLogMaxSize)
}

// sizeUnits are the suffixes ParseSize knows, longest first so that "MiB"
// is not read as "B".
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// ParseSize reads a positive size: a whole number of bytes, optionally
// followed by B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of
// 1024), with or without a space: "100MB", "64 KiB", "4096".
func ParseSize(s string) (int64, error) {
	num, factor := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, factor = strings.TrimSpace(n), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/factor {
		return 0, fmt.Errorf("%q is not a size such as 100MB or 64KiB", s)
	}
	return n * factor, nil
}

// Codes configures security codes.
type Codes struct {
	// KeyFile holds the server key codes are sealed under (32 random
	// bytes or more; replicas share the file). Relative to data_dir unless
	// absolute; created 0600 on first start when missing. Default
	// codes.key.
	KeyFile string `yaml:"key_file"`
}

// CodeKeyPath is where the code key is read from.
func (f *File) CodeKeyPath() string {
	return f.DataPath(f.Codes.KeyFile)
}

// DataPath is p when it is absolute, else p under data_dir.
func (f *File) DataPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.DataDir, p)
}

// Delivery chooses the sender of each channel that security codes and
// notices go by. A channel left out has no sender: nothing is sent by it,
// and a step-up by it answers code_not_sent.
type Delivery struct {
	SMS   *Channel `yaml:"sms"`
	Voice *Channel `yaml:"voice"`
	Email *Channel `yaml:"email"`
}

// Channels are the channels configured, by name (sms, voice, email), in
// that order.
func (d Delivery) Channels() []NamedChannel {
	var out []NamedChannel
	for _, c := range []NamedChannel{{"sms", d.SMS}, {"voice", d.Voice}, {"email", d.Email}} {
		if c.Channel != nil {
			out = append(out, c)
		}
	}
	return out
}

// NamedChannel is a channel's name and its sender.
type NamedChannel struct {
	Name string
	*Channel
}

// Channel is one channel's sender: exactly one of its fields is set.
// Twilio sends text messages and voice calls only, SMTP email only.
type Channel struct {
	Outbox  *Outbox  `yaml:"outbox"`
	Webhook *Webhook `yaml:"webhook"`
	Twilio  *Twilio  `yaml:"twilio"`
	SMTP    *SMTP    `yaml:"smtp"`
}

// kinds are the senders c sets, by key.
func (c *Channel) kinds() []string {
	var out []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"outbox", c.Outbox != nil}, {"webhook", c.Webhook != nil}, {"twilio", c.Twilio != nil}, {"smtp", c.SMTP != nil}} {
		if k.set {
			out = append(out, k.name)
		}
	}
	return out
}

// SecretFiles are the files the senders' secrets are read from.
func (d Delivery) SecretFiles() []string {
	var out []string
	for _, p := range d.secretFiles() {
		if *p != "" {
			out = append(out, *p)
		}
	}
	return out
}

// secretFiles points at every secret file key, set or not, so that parse
// can make them absolute.
func (d Delivery) secretFiles() []*string {
	var out []*string
	for _, c := range d.Channels() {
		if c.Webhook != nil {
			out = append(out, &c.Webhook.SecretFile)
		}
		if c.Twilio != nil {
			out = append(out, &c.Twilio.SecretFile)
		}
		if c.SMTP != nil {
			out = append(out, &c.SMTP.PasswordFile)
		}
	}
	return out
}

// senderChannels are the channels each sender delivers by, and
// channelVerbs say what delivering by each channel is.
var (
	senderChannels = map[string][]string{
		"outbox": {"sms", "voice", "email"}, "webhook": {"sms", "voice", "email"},
		"twilio": {"sms", "voice"}, "smtp": {"email"},
	}
	channelVerbs = map[string]string{"sms": "send text messages", "voice": "place voice calls", "email": "send email"}
)

// addFunc reports a problem at a path.
type addFunc func(path, format string, a ...any)

// validate checks each channel's sender.
func (d Delivery) validate() []Problem {
	var ps []Problem
	add := func(path, format string, a ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, a...)})
	}
	for _, c := range d.Channels() {
		path := "delivery." + c.Name
		var fit []string
		for _, k := range []string{"outbox", "webhook", "twilio", "smtp"} {
			if slices.Contains(senderChannels[k], c.Name) {
				fit = append(fit, k)
			}
		}
		kinds := c.kinds()
		switch len(kinds) {
		case 0:
			add(path, "names no sender: set one of %s", strings.Join(fit, ", "))
		case 1:
		default:
			add(path, "sets %s: a channel has one sender", andList(kinds))
		}
		for _, k := range kinds {
			if !slices.Contains(fit, k) {
				add(path+"."+k, "%s cannot %s; use %s", k, channelVerbs[c.Name], orList(fit))
			}
		}
		// A sender that cannot serve the channel has its one problem.
		if c.Outbox != nil && c.Outbox.Path == "" {
			add(path+".outbox.path", "is required")
		}
		if c.Webhook != nil {
			c.Webhook.validate(add, path+".webhook")
		}
		if c.Twilio != nil && slices.Contains(fit, "twilio") {
			c.Twilio.validate(add, path+".twilio", c.Name == "voice")
		}
		if c.SMTP != nil && slices.Contains(fit, "smtp") {
			c.SMTP.validate(add, path+".smtp")
		}
	}
	return ps
}

func (w *Webhook) validate(add addFunc, p string) {
	if w.URL == "" {
		add(p+".url", "is required")
	} else if msg := endpointProblem(w.URL); msg != "" {
		add(p+".url", "%s", msg)
	}
	// As webhook.MinSecretLen: the size of the HMAC-SHA256 output.
	if v, ok := secretProblems(add, p, "secret", w.SecretFile, w.SecretEnv, true); ok && len(v) < 32 {
		add(p+"."+secretKey("secret", w.SecretFile), "the secret is %d bytes; it must be at least 32 (e.g. `openssl rand -hex 32`)", len(v))
	}
	if w.Timeout < 0 {
		add(p+".timeout", "must not be negative")
	}
}

func (t *Twilio) validate(add addFunc, p string, voice bool) {
	if t.BaseURL != "" {
		if msg := endpointProblem(t.BaseURL); msg != "" {
			add(p+".base_url", "%s", msg)
		}
	}
	if t.AccountSID == "" {
		add(p+".account_sid", "is required")
	}
	secretProblems(add, p, "secret", t.SecretFile, t.SecretEnv, true)
	switch {
	case voice && t.From == "":
		add(p+".from", "is required for voice calls (messaging_service_sid sends text messages only)")
	case t.From == "" && t.MessagingServiceSID == "":
		add(p, "needs from or messaging_service_sid")
	}
	if t.Timeout < 0 {
		add(p+".timeout", "must not be negative")
	}
}

func (m *SMTP) validate(add addFunc, p string) {
	if m.Host == "" {
		add(p+".host", "is required")
	}
	switch m.Security {
	case "", "starttls", "tls":
	case "none":
		if m.Host != "" && !loopback(m.Host) {
			add(p+".security", "none is allowed only for a loopback host, not %q; use starttls or tls", m.Host)
		}
	default:
		add(p+".security", "%q is not one of starttls, tls, none", m.Security)
	}
	if m.Port < 0 || m.Port > 65535 {
		add(p+".port", "%d is not a port", m.Port)
	}
	if m.From == "" {
		add(p+".from", "is required")
	} else if _, err := mail.ParseAddress(m.From); err != nil {
		add(p+".from", "%q is not an email address: %v", m.From, err)
	}
	_, password := secretProblems(add, p, "password", m.PasswordFile, m.PasswordEnv, m.Username != "")
	if m.Username == "" && password {
		add(p+".username", "is required with a password")
	}
	if m.Username != "" && m.Security == "none" {
		add(p+".username", "authentication needs TLS; it cannot be used with security none")
	}
	if m.Timeout < 0 {
		add(p+".timeout", "must not be negative")
	}
}

// secretProblems checks the secret at path named by name_file or
// name_env, reporting it missing when required, and returns it and whether
// it was read.
func secretProblems(add addFunc, path, name, file, env string, required bool) ([]byte, bool) {
	if file != "" && env != "" {
		add(path+"."+name+"_env", "set %[1]s_file or %[1]s_env, not both", name)
		return nil, false
	}
	key, v, err := readSecret(name, file, env)
	switch {
	case err != nil:
		add(path+"."+key, "%v", err)
	case key == "":
		if required {
			add(path, "needs %[1]s_file or %[1]s_env (never inline)", name)
		}
	case len(v) == 0:
		add(path+"."+key, "%s is empty", file)
	default:
		return v, true
	}
	return nil, false
}

// secretKey is the key a secret named by file (or else the environment)
// comes from.
func secretKey(name, file string) string {
	if file != "" {
		return name + "_file"
	}
	return name + "_env"
}

// endpointProblem says what is wrong with a sender's URL: it must be an
// absolute https URL, or http to a loopback host; "" when nothing is.
func endpointProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		return fmt.Sprintf("%q is not an absolute URL", raw)
	case u.User != nil:
		return fmt.Sprintf("%q carries a user name or password; secrets come from secret_file or secret_env", u.Redacted())
	case u.Scheme == "https", u.Scheme == "http" && loopback(u.Hostname()):
		return ""
	}
	return fmt.Sprintf("%q must be an https URL (http only to a loopback host)", raw)
}

// loopback reports whether host is localhost or a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func andList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// Outbox writes every message as a JSON line to a file instead of sending
// it: for the demo, tests and development, never production (the file
// holds live codes).
type Outbox struct {
	// Path of the file, relative to data_dir unless absolute; created 0600.
	Path string `yaml:"path"`
}

// Webhook POSTs every message, signed with HMAC-SHA256, to an endpoint of
// the operator's own.
type Webhook struct {
	URL string `yaml:"url"`
	// SecretFile or SecretEnv holds the signing secret (at least 32
	// bytes, used byte for byte); never inline.
	SecretFile string        `yaml:"secret_file"`
	SecretEnv  string        `yaml:"secret_env"`
	Timeout    time.Duration `yaml:"timeout"`
}

// Secret reads the webhook's signing secret.
func (w *Webhook) Secret() ([]byte, error) {
	return secretValue(readSecret("secret", w.SecretFile, w.SecretEnv))
}

// Twilio sends text messages and places voice calls through Twilio's REST
// API or a service that copies it.
type Twilio struct {
	// BaseURL is the API without its version path; empty means Twilio's.
	BaseURL    string `yaml:"base_url"`
	AccountSID string `yaml:"account_sid"`
	// APIKeySID authenticates with an API key instead of the account's
	// auth token.
	APIKeySID string `yaml:"api_key_sid"`
	// SecretFile or SecretEnv holds the API key's secret (or, without
	// APIKeySID, the auth token); never inline.
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// From is the sending number; voice calls need it.
	From string `yaml:"from"`
	// MessagingServiceSID sends text messages through a Messaging Service
	// instead of From.
	MessagingServiceSID string        `yaml:"messaging_service_sid"`
	Timeout             time.Duration `yaml:"timeout"`
}

// Secret reads the API key's secret or the auth token.
func (t *Twilio) Secret() (string, error) {
	b, err := secretValue(readSecret("secret", t.SecretFile, t.SecretEnv))
	return string(b), err
}

// SMTP sends email through a mail server over TLS.
type SMTP struct {
	Host string `yaml:"host"`
	// Port zero means 587 for starttls, 465 for tls, 25 for none.
	Port int `yaml:"port"`
	// Security is starttls (the default), tls, or none (loopback only).
	Security string `yaml:"security"`
	From     string `yaml:"from"`
	// Username, when set, authenticates with AUTH PLAIN; the password
	// comes from PasswordFile or PasswordEnv, never inline.
	Username     string        `yaml:"username"`
	PasswordFile string        `yaml:"password_file"`
	PasswordEnv  string        `yaml:"password_env"`
	HeloName     string        `yaml:"helo_name"`
	Timeout      time.Duration `yaml:"timeout"`
}

// Password reads the mail server password; "" when none is configured.
func (s *SMTP) Password() (string, error) {
	b, err := secretValue(readSecret("password", s.PasswordFile, s.PasswordEnv))
	return string(b), err
}

// readSecret reads a secret from file, without one trailing newline, or
// from the environment variable env; nil when neither is named. It names
// the key the secret comes from (name+"_file" or name+"_env").
func readSecret(name, file, env string) (key string, value []byte, err error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return name + "_file", nil, err
		}
		if t, ok := bytes.CutSuffix(b, []byte("\r\n")); ok {
			return name + "_file", t, nil
		}
		return name + "_file", bytes.TrimSuffix(b, []byte("\n")), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return name + "_env", nil, fmt.Errorf("%s is not set", env)
		}
		return name + "_env", []byte(v), nil
	}
	return "", nil, nil
}

// secretValue is readSecret's value, or its error prefixed with the key.
func secretValue(key string, value []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return value, nil
}

// Phone configures how phone numbers are read and typed (mobile, fixed
// line, VoIP ...): libphonenumber's number plan, and optionally a carrier
// lookup for the real line type.
type Phone struct {
	// DefaultRegion is the ISO 3166 region of numbers typed without a
	// country code. Default "US".
	DefaultRegion string `yaml:"default_region"`
	// CarrierLookup, when its URL is set, asks a carrier-data API for the
	// line type (libphonenumber cannot tell a US VoIP number).
	CarrierLookup CarrierLookup `yaml:"carrier_lookup"`
}

// CarrierLookup is a carrier-data provider's HTTP API.
type CarrierLookup struct {
	// URL with {e164} where the number goes.
	URL string `yaml:"url"`
	// Header carries the API secret, e.g. "X-Api-Key".
	Header string `yaml:"header"`
	// SecretFile or SecretEnv holds the header's value; never inline.
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// Field is the dot-separated path of the line type in the answer.
	Field string `yaml:"field"`
	// Types maps the provider's values to line types.
	Types   map[string]string `yaml:"types"`
	Timeout time.Duration     `yaml:"timeout"`
}

// Secret reads the carrier lookup's secret from its file or environment
// variable; "" when neither is set.
func (c CarrierLookup) Secret() (string, error) {
	key, v, err := c.secret()
	if err != nil {
		return "", fmt.Errorf("phone.carrier_lookup.%s: %w", key, err)
	}
	return v, nil
}

// secret reads the secret and names the key it comes from.
func (c CarrierLookup) secret() (key, value string, err error) {
	switch {
	case c.SecretFile != "":
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return "secret_file", "", err
		}
		return "secret_file", strings.TrimSpace(string(b)), nil
	case c.SecretEnv != "":
		v, ok := os.LookupEnv(c.SecretEnv)
		if !ok || v == "" {
			return "secret_env", "", fmt.Errorf("%s is not set", c.SecretEnv)
		}
		return "secret_env", v, nil
	}
	return "", "", nil
}

// GeoIP configures the anonymizer signals.
type GeoIP struct {
	// AnonymousIP is a MaxMind GeoIP2 Anonymous-IP database, reloaded when
	// the file changes.
	AnonymousIP string `yaml:"anonymous_ip"`
	// Country is an optional GeoIP2/GeoLite2 Country database.
	Country string `yaml:"country"`
	// AllowMissing runs without an Anonymous-IP database. Every address is
	// then unchecked, and the policies decide (the shipped ones deny).
	AllowMissing bool `yaml:"allow_missing"`
}

// Listen says where the gateway listens.
type Listen struct {
	HTTPS string `yaml:"https"`
	// HTTP, when set, only redirects to HTTPS (and answers ACME HTTP-01
	// challenges).
	HTTP string `yaml:"http"`
	// Admin serves /healthz, /readyz and /metrics; loopback by default.
	Admin string `yaml:"admin"`
	// AdminExposed lets Admin listen on an address other than loopback:
	// a Kubernetes pod's network, so that the kubelet's probes and
	// Prometheus reach it. Nothing on it asks who is calling, so a network
	// policy must keep everyone else out. Default false.
	AdminExposed bool `yaml:"admin_exposed"`
	// Pprof adds Go's profiler (/debug/pprof/) to the admin listener.
	Pprof bool `yaml:"pprof"`
	// PublicPort is the HTTPS port browsers use when a load balancer or
	// proxy in front listens on another port than the gateway's Host
	// headers show; 0 (the default) trusts each request's Host port.
	// Sign-in return targets and codes are bound to it.
	PublicPort int `yaml:"public_port"`
}

// TLS selects where certificates come from.
type TLS struct {
	Mode  string `yaml:"mode"` // internal, acme or files
	ACME  ACME   `yaml:"acme"`
	Files Files  `yaml:"files"`
}

// ACME configures certificates from an ACME CA such as Let's Encrypt.
type ACME struct {
	Email string `yaml:"email"`
	CA    string `yaml:"ca"`
	// CARoot is a PEM file with the root of a private ACME CA.
	CARoot   string `yaml:"ca_root"`
	OnDemand bool   `yaml:"on_demand"`
	// Ask is called as Ask?domain=NAME before an on-demand certificate is
	// obtained; any answer but 2xx refuses it.
	Ask string `yaml:"ask"`
}

// Files names a certificate and key on disk.
type Files struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Route sends a host (and path prefix) to an upstream app.
type Route struct {
	Name       string `yaml:"name"`
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
	Upstream   string `yaml:"upstream"`
}

// Store selects where state is kept: profiles, devices, factors and
// signing keys in the durable store (driver); counters, sessions and
// single-use records there too, or in Redis when redis.url_file is set.
type Store struct {
	Driver string `yaml:"driver"` // sqlite or postgres
	// Path of the SQLite file, relative to data_dir unless absolute.
	Path     string        `yaml:"path"`
	Postgres StorePostgres `yaml:"postgres"`
	Redis    StoreRedis    `yaml:"redis"`
	// AllowInsecurePermissions starts the gateway, with a loud warning,
	// when the store file or a private key file (the local CA's, tls.files.key)
	// can be read or written by group or others. Default false: start-up
	// refuses such a file.
	AllowInsecurePermissions bool `yaml:"allow_insecure_permissions"`
}

// ForwardAuth says which proxies may ask the forward-auth endpoint.
type ForwardAuth struct {
	// TrustedNetworks are the IP addresses or CIDR networks of the proxies
	// that call /.portcullis/auth; every other caller is refused. Empty
	// (the default) turns the endpoint off.
	TrustedNetworks []string `yaml:"trusted_networks"`
}

// StorePostgres is the PostgreSQL server of driver postgres.
type StorePostgres struct {
	// DSNFile holds the connection string (a postgres:// URL or
	// key=value pairs, password included): a secret, mode 0600.
	DSNFile string `yaml:"dsn_file"`
}

// StoreRedis is the Redis server that keeps counters, sessions and
// single-use records for every replica; none when URLFile is empty.
type StoreRedis struct {
	// URLFile holds the server's URL (redis://[user:password@]host:port/db,
	// rediss:// for TLS, unix:///path): a secret, mode 0600.
	URLFile string `yaml:"url_file"`
	// Prefix starts every key the gateway writes; default "portcullis:".
	Prefix string `yaml:"prefix"`
}

// PostgresDSN reads the PostgreSQL connection string from its file.
func (s Store) PostgresDSN() (string, error) {
	return storeSecret("dsn", s.Postgres.DSNFile)
}

// RedisURL reads the Redis URL from its file; "" when none is configured.
func (s Store) RedisURL() (string, error) {
	if s.Redis.URLFile == "" {
		return "", nil
	}
	return storeSecret("url", s.Redis.URLFile)
}

// storeSecret reads a store's secret from file, refusing an empty one.
func storeSecret(name, file string) (string, error) {
	if file == "" {
		return "", fmt.Errorf("%s_file is not set", name)
	}
	b, err := secretValue(readSecret(name, file, ""))
	if err != nil {
		return "", err
	}
	if v := strings.TrimSpace(string(b)); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("%s_file: %s is empty", name, file)
}

// validate checks the driver and the files of the store's servers, what it
// can without connecting: each file is read, and the Redis URL's form is
// checked without repeating it (it may hold a password).
func (s Store) validate() []Problem {
	var ps []Problem
	add := func(path, format string, a ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, a...)})
	}
	switch s.Driver {
	case "sqlite":
		if s.Postgres.DSNFile != "" {
			add("store.postgres.dsn_file", "needs store.driver: postgres")
		}
	case "postgres":
		if s.Postgres.DSNFile == "" {
			add("store.postgres.dsn_file", "is required with store.driver: postgres (a file holding the connection string, mode 0600)")
		} else if _, err := s.PostgresDSN(); err != nil {
			add("store.postgres.dsn_file", "%v", strings.TrimPrefix(err.Error(), "dsn_file: "))
		}
	default:
		add("store.driver", "%q is not supported (sqlite or postgres)", s.Driver)
	}
	if s.Redis.URLFile == "" {
		if s.Redis.Prefix != "" {
			add("store.redis.prefix", "needs store.redis.url_file")
		}
	} else if raw, err := s.RedisURL(); err != nil {
		add("store.redis.url_file", "%v", strings.TrimPrefix(err.Error(), "url_file: "))
	} else if msg := redisURLProblem(raw); msg != "" {
		add("store.redis.url_file", "%s holds %s", s.Redis.URLFile, msg)
	}
	if strings.ContainsFunc(s.Redis.Prefix, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		add("store.redis.prefix", "must not contain spaces or control characters")
	}
	return ps
}

// redisURLProblem says what is wrong with a Redis URL, without repeating
// it; "" when nothing is.
func redisURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "a URL that cannot be parsed"
	case u.Scheme == "unix":
		if u.Path == "" {
			return "a unix URL without a socket path"
		}
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return fmt.Sprintf("a URL whose scheme %q is not redis, rediss or unix", u.Scheme)
	case u.Host == "":
		return "a URL without a host"
	}
	return ""
}

// Session bounds sign-ins.
type Session struct {
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// Identity configures the hand-off to upstreams.
type Identity struct {
	// AssertionTTL is the signed assertion's lifetime, at most 60s.
	AssertionTTL time.Duration `yaml:"assertion_ttl"`
	// StripHeaders are identity headers of other systems that clients must
	// never be able to send to upstreams.
	StripHeaders []string `yaml:"strip_headers"`
	// Headers are extra headers set on proxied requests: name → username
	// or user_id.
	Headers map[string]string `yaml:"headers"`
}

// Password sets argon2id costs.
type Password struct {
	MemoryKiB     uint32 `yaml:"memory_kib"`
	Iterations    uint32 `yaml:"iterations"`
	Parallelism   uint8  `yaml:"parallelism"`
	MaxConcurrent int    `yaml:"max_concurrent"`
	// QueueTimeout bounds how long a sign-in waits for a hashing slot
	// before it is answered 503 with Retry-After. Default 2s.
	QueueTimeout time.Duration `yaml:"queue_timeout"`
	// Nice lowers the hashing threads' scheduling priority (0 to 19;
	// 0 keeps the process's). Default credential.DefaultNice.
	Nice *int `yaml:"nice"`
	// Blocklist is a file of breached passwords, one a line, refused as
	// new passwords beside zxcvbn's common ones (compared after NFC
	// normalisation, ignoring case). Read once at start; empty means
	// none.
	Blocklist string `yaml:"blocklist"`
}

// nice is the configured nice value, or the default when unset.
func (p Password) nice() int {
	if p.Nice == nil {
		return credential.DefaultNice
	}
	return *p.Nice
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Load reads and validates a configuration file. A file with problems gives
// an *Error listing every one of them.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, problems := parse(data, filepath.Dir(path))
	if len(problems) > 0 {
		return nil, &Error{File: path, Problems: problems}
	}
	if !filepath.IsAbs(f.DataDir) {
		abs, err := filepath.Abs(filepath.Join(filepath.Dir(path), f.DataDir))
		if err != nil {
			return nil, fmt.Errorf("config: data_dir: %w", err)
		}
		f.DataDir = abs
	}
	f.Source = path
	return f, nil
}

// Parse decodes and validates configuration, reporting every problem in an
// *Error. Relative file paths are taken from the working directory.
func Parse(data []byte) (*File, error) {
	f, problems := parse(data, ".")
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return f, nil
}

// parse is the one validation pass: YAML syntax, then keys and types
// against File, then the rules (this package's and the gateway's) on what
// decoded, each problem placed on its line.
func parse(data []byte, base string) (*File, []Problem) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []Problem{syntaxProblem(data, err)}
	}
	var f File
	var c checker
	if root.Kind != 0 { // an empty file is all defaults
		c.walk(&root, reflect.TypeFor[File](), "")
		// What does not decode is reported by the walk; a failure it did not
		// foresee must not go unreported, and leaves nothing to trust.
		if err := decode(&root, &f); err != nil && len(c.undecoded) == 0 {
			c.problems = append(c.problems, Problem{Message: strings.TrimPrefix(err.Error(), "yaml: ")})
			c.undecoded = append(c.undecoded, "")
		}
	}
	f.setDefaults()
	if f.Phone.DefaultRegion == "" {
		f.Phone.DefaultRegion = "US"
	}
	for _, p := range append([]*string{&f.GeoIP.AnonymousIP, &f.GeoIP.Country, &f.Policies.Dir, &f.Policies.DecisionLog,
		&f.Policies.Bundle, &f.Policies.BundlePublicKey, &f.Policies.ShadowDir, &f.Policies.ShadowBundle,
		&f.Phone.CarrierLookup.SecretFile, &f.Password.Blocklist, &f.Directory.File, &f.Directory.TokenFile,
		&f.Directory.CAFile, &f.Brand.Logo, &f.ThemeDir, &f.Store.Postgres.DSNFile, &f.Store.Redis.URLFile}, f.Delivery.secretFiles()...) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	for i := range f.Admin.Tokens {
		if p := &f.Admin.Tokens[i].File; *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	problems := c.problems
	for _, p := range f.validate() {
		p.Path = c.filePath(p.Path)
		if c.covers(p.Path) {
			continue
		}
		p.Line, p.Column = locate(&root, p.Path)
		problems = append(problems, p)
	}
	return &f, sortProblems(problems)
}

// decode decodes root into f. yaml.v3 panics on some files (a list as a
// key beside a merge key); that is one more file it cannot decode.
func decode(root *yaml.Node, f *File) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot decode: %v", r)
		}
	}()
	return root.Decode(f)
}

func (f *File) setDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&f.DataDir, "data")
	def(&f.Listen.HTTPS, ":443")
	def(&f.Listen.Admin, "127.0.0.1:9090")
	def(&f.TLS.Mode, "internal")
	def(&f.Store.Driver, "sqlite")
	def(&f.Store.Path, "portcullis.db")
	def(&f.Codes.KeyFile, "codes.key")
	def(&f.Log.Level, "info")
	def(&f.Log.Format, "json")
	for i := range f.Routes {
		def(&f.Routes[i].PathPrefix, "/")
	}
	if f.Session.IdleTimeout == 0 {
		f.Session.IdleTimeout = 15 * time.Minute
	}
	if f.Session.MaxLifetime == 0 {
		f.Session.MaxLifetime = 12 * time.Hour
	}
	if f.Policies.DecisionLogMaxFiles == 0 {
		f.Policies.DecisionLogMaxFiles = 5
	}
	if f.Policies.Watch == nil {
		watch := true
		f.Policies.Watch = &watch
	}
	if f.Identity.AssertionTTL == 0 {
		f.Identity.AssertionTTL = 60 * time.Second
	}
	p := credential.DefaultParams()
	if f.Password.MemoryKiB == 0 {
		f.Password.MemoryKiB = p.MemoryKiB
	}
	if f.Password.Iterations == 0 {
		f.Password.Iterations = p.Time
	}
	if f.Password.Parallelism == 0 {
		f.Password.Parallelism = p.Threads
	}
	if f.Password.Nice == nil {
		f.Password.Nice = &p.Nice
	}
	if f.Password.MaxConcurrent == 0 {
		f.Password.MaxConcurrent = p.MaxConcurrent
	}
	if f.Issuer == "" {
		host := f.LoginHost
		if host == "" && len(f.Routes) > 0 {
			host = f.Routes[0].Host
		}
		if host != "" {
			f.Issuer = "https://" + host
		}
	}
}

// validate applies this package's rules and the gateway's
// (gateway.Config.Validate) to a decoded file. Each rule lives in one of
// the two places.
func (f *File) validate() []Problem {
	var ps []Problem
	add := func(path, format string, a ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, a...)})
	}
	for _, l := range []struct{ path, addr string }{
		{"listen.https", f.Listen.HTTPS}, {"listen.http", f.Listen.HTTP}, {"listen.admin", f.Listen.Admin},
	} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			add(l.path, "%q is not host:port", l.addr)
		}
	}
	if h, _, err := net.SplitHostPort(f.Listen.Admin); err == nil {
		if ip, err := netip.ParseAddr(h); !f.Listen.AdminExposed && (h == "" || (err == nil && !ip.IsLoopback())) {
			add("listen.admin", "%q is not a loopback address; the admin listener serves metrics and health without authentication", f.Listen.Admin)
		}
	}
	switch f.TLS.Mode {
	case "internal":
	case "acme":
		if f.TLS.ACME.Email == "" {
			add("tls.acme.email", "is required in acme mode")
		}
		if f.TLS.ACME.OnDemand && f.TLS.ACME.Ask == "" {
			add("tls.acme.ask", "is required with on_demand: without it anyone could make the gateway request certificates")
		}
		if f.TLS.ACME.Ask != "" {
			if u, err := url.Parse(f.TLS.ACME.Ask); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				add("tls.acme.ask", "%q is not an http(s) URL", f.TLS.ACME.Ask)
			}
		}
	case "files":
		if f.TLS.Files.Cert == "" {
			add("tls.files.cert", "is required in files mode")
		}
		if f.TLS.Files.Key == "" {
			add("tls.files.key", "is required in files mode")
		}
	default:
		add("tls.mode", "%q is not one of internal, acme, files", f.TLS.Mode)
	}
	switch pol := f.Policies; {
	case pol.Bundle != "" && pol.Dir != "":
		add("policies.bundle", "and policies.dir are both set; choose one")
	case pol.Bundle == "" && pol.ShadowBundle == "" && (pol.BundlePublicKey != "" || pol.BundleKeyID != "" || pol.BundleUnsigned):
		add("policies.bundle", "is required with policies.bundle_public_key, bundle_key_id or bundle_unsigned")
	case pol.Bundle != "" && pol.BundlePublicKey == "" && !pol.BundleUnsigned:
		add("policies.bundle_public_key", "is required with policies.bundle, so that only a signed bundle is loaded (set policies.bundle_unsigned to accept unsigned bundles, never in production)")
	case pol.BundlePublicKey != "" && pol.BundleUnsigned:
		add("policies.bundle_unsigned", "cannot be set with policies.bundle_public_key: a key means every bundle must be signed")
	}
	switch pol := f.Policies; {
	case pol.ShadowDir != "" && pol.ShadowBundle != "":
		add("policies.shadow_bundle", "and policies.shadow_dir are both set; choose one")
	case pol.ShadowBundle != "" && pol.BundlePublicKey == "" && !pol.BundleUnsigned:
		add("policies.shadow_bundle", "needs policies.bundle_public_key to verify it (or policies.bundle_unsigned)")
	}
	if f.GeoIP.AnonymousIP == "" && !f.GeoIP.AllowMissing {
		add("geoip.anonymous_ip", "is required, or no login can be checked for VPNs and anonymizers (set geoip.allow_missing to run without, and the policies will refuse unchecked addresses)")
	}
	for _, p := range []struct{ path, file string }{
		{"geoip.anonymous_ip", f.GeoIP.AnonymousIP}, {"geoip.country", f.GeoIP.Country}, {"policies.dir", f.Policies.Dir},
		{"policies.bundle", f.Policies.Bundle}, {"policies.bundle_public_key", f.Policies.BundlePublicKey},
		{"policies.shadow_dir", f.Policies.ShadowDir}, {"policies.shadow_bundle", f.Policies.ShadowBundle},
	} {
		if p.file == "" {
			continue
		}
		if _, err := os.Stat(p.file); err != nil {
			add(p.path, "%v", err)
		}
	}
	if f.Password.Blocklist != "" {
		if err := readable(f.Password.Blocklist); err != nil {
			add("password.blocklist", "%v", err)
		}
	}
	ps = append(ps, f.Directory.validate()...)
	ps = append(ps, f.validateTheme()...)
	if cl := f.Phone.CarrierLookup; cl.URL != "" {
		if cl.Field == "" {
			add("phone.carrier_lookup.field", "is required with phone.carrier_lookup.url")
		}
		if cl.Header != "" && cl.SecretFile == "" && cl.SecretEnv == "" {
			add("phone.carrier_lookup.header", "needs secret_file or secret_env")
		}
		if cl.SecretFile != "" && cl.SecretEnv != "" {
			add("phone.carrier_lookup.secret_env", "set secret_file or secret_env, not both")
		}
		if key, _, err := cl.secret(); err != nil {
			add("phone.carrier_lookup."+key, "%v", err)
		}
	}
	if _, err := f.Policies.DecisionLogMaxBytes(); err != nil {
		add("policies.decision_log_max_size", "%v", err)
	}
	if f.Policies.DecisionLogMaxFiles < 1 {
		add("policies.decision_log_max_files", "%d is not a positive number of files", f.Policies.DecisionLogMaxFiles)
	}
	ps = append(ps, f.Delivery.validate()...)
	ps = append(ps, f.Store.validate()...)
	ps = append(ps, f.Admin.validate()...)
	for i, p := range f.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR network", p)
		}
	}
	// An empty issuer had no host to default from: the gateway reports the
	// missing route.
	if u, err := url.Parse(f.Issuer); f.Issuer != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
		add("issuer", "%q must be an https URL", f.Issuer)
	}
	switch f.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q is not one of debug, info, warn, error", f.Log.Level)
	}
	if f.Log.Format != "json" && f.Log.Format != "text" {
		add("log.format", "%q is not json or text", f.Log.Format)
	}
	if err := f.Gateway().Validate(); err != nil {
		var fes gateway.FieldErrors
		if !errors.As(err, &fes) {
			add("", "%v", err)
		}
		for _, fe := range fes {
			add(fe.Path, "%s", fe.Message)
		}
	}
	return ps
}

// readable reports why the regular file at path cannot be read, or nil.
func readable(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if _, err := fh.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// parsePrefixes parses the networks that parse; validate reports the rest.
func parsePrefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// forwardAuthNetworks parses every network, an entry that does not parse
// as the zero Prefix, which the gateway's Validate reports at its index.
func forwardAuthNetworks(ss []string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i], _ = parsePrefix(s)
	}
	return out
}

// Gateway returns the gateway's part of the configuration.
func (f *File) Gateway() gateway.Config {
	routes := make([]gateway.Route, len(f.Routes))
	for i, r := range f.Routes {
		u, err := url.Parse(r.Upstream)
		if err != nil {
			u = nil // Validate refuses a route without an upstream
		}
		routes[i] = gateway.Route{Name: r.Name, Host: r.Host, PathPrefix: r.PathPrefix, Upstream: u}
	}
	trusted := parsePrefixes(f.TrustedProxies)
	return gateway.Config{
		LoginHost:       f.LoginHost,
		Routes:          routes,
		TrustedProxies:  trusted,
		ForwardAuth:     gateway.ForwardAuthConfig{TrustedNetworks: forwardAuthNetworks(f.ForwardAuth.TrustedNetworks)},
		Session:         gateway.SessionConfig{IdleTimeout: f.Session.IdleTimeout, MaxLifetime: f.Session.MaxLifetime},
		StripHeaders:    f.Identity.StripHeaders,
		IdentityHeaders: f.Identity.Headers,
		Password: credential.Params{MemoryKiB: f.Password.MemoryKiB, Time: f.Password.Iterations,
			Threads: f.Password.Parallelism, MaxConcurrent: f.Password.MaxConcurrent,
			QueueTimeout: f.Password.QueueTimeout, Nice: f.Password.nice()},
		PasswordBlocklist: f.Password.Blocklist,
		AssertionTTL:      f.Identity.AssertionTTL,
		SupportPhone:      f.SupportPhone,
		Organisation:      f.Organisation,
		PublicPort:        f.Listen.PublicPort,
	}
}

// Hosts returns every host name the gateway serves, for certificates.
func (f *File) Hosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range append([]string{f.LoginHost}, routeHosts(f.Routes)...) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

func routeHosts(rs []Route) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Host
	}
	return out
}

// StorePath returns the SQLite file's path.
func (f *File) StorePath() string {
	return f.DataPath(f.Store.Path)
}
