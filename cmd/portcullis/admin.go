package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/admin"
	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/compose"
	"github.com/portcullis/portcullis/plugins/store/combined"
	"github.com/portcullis/portcullis/policies"
)

const adminUsage = `usage:
  portcullis admin user add    --config FILE --username NAME [--name "Display Name"] [--products a,b]
                               [--phone NUMBER] [--email ADDRESS]   (password on stdin)
  portcullis admin user list   --config FILE
  portcullis admin user unlock --config FILE --username NAME
  portcullis admin user phone  --config FILE --username NAME --phone NUMBER
                               (replace the security phone once the person is verified offline; --phone "" removes it)
  portcullis admin keys list   --config FILE
  portcullis admin keys rotate --config FILE     (a new signing key; the old one stays published until it can sign nothing still valid)

over a running gateway's admin API (several replicas, a gateway in a container):
  portcullis admin --server URL --token-file FILE user unlock   --username NAME
  portcullis admin --server URL --token-file FILE user phone    --username NAME --phone NUMBER
  portcullis admin --server URL --token-file FILE user sessions --username NAME [--revoke [ID]]
  portcullis admin --server URL --token-file FILE user devices  --username NAME [--remove ID]
  portcullis admin --server URL --token-file FILE user decisions --username NAME [--limit N]   (newest first; decision why ID explains one)
  portcullis admin --server URL --token-file FILE decision why  ID
  portcullis admin --server URL --token-file FILE keys rotate
                               (URL: http://127.0.0.1:9090, the admin listener; http only to loopback, else https)
`

func cmdAdmin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	gfs := flag.NewFlagSet("admin", flag.ContinueOnError)
	gfs.SetOutput(stderr)
	server := gfs.String("server", "", "a running gateway's admin listener, http://127.0.0.1:9090; without it the command works on the store itself")
	tokenFile := gfs.String("token-file", "", "the file holding the admin API token (mode 0600), with --server")
	if err := gfs.Parse(args); err != nil {
		return err
	}
	args = gfs.Args()
	if *server != "" {
		return cmdAdminRemote(ctx, *server, *tokenFile, args, stdout, stderr)
	}
	if *tokenFile != "" {
		return errors.New("admin: --token-file needs --server")
	}
	if len(args) >= 2 && args[0] == "keys" {
		return cmdAdminKeys(ctx, args[1], args[2:], stdout, stderr)
	}
	if len(args) < 2 || args[0] != "user" {
		fmt.Fprint(stderr, adminUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("admin user "+args[1], flag.ContinueOnError)
	fs.SetOutput(stderr)
	username := fs.String("username", "", "username")
	display := fs.String("name", "", "display name (add)")
	products := fs.String("products", "", "comma-separated route names the customer holds (add)")
	phoneNumber := fs.String("phone", "", "security phone, where codes go; read in phone.default_region unless it starts with + (add, phone)")
	email := fs.String("email", "", "email address, where notices go (add)")
	customerID := fs.String("customer-id", "", "the bank's customer ID, linking the profile to its directory record (add)")
	cfg, db, err := openConfigStore(ctx, fs, args[2:])
	if err != nil {
		return err
	}
	defer db.Close()
	logger, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	phones, err := compose.NewPhones(cfg.Phone, logger)
	if err != nil {
		return err
	}
	switch args[1] {
	case "add":
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		if err := knownProducts(cfg, splitList(*products)); err != nil {
			return err
		}
		hasher, err := credential.NewHasher(cfg.Gateway().Password, rand.Reader)
		if err != nil {
			return err
		}
		// The password rules are the serving policy's.
		pc, err := compose.PolicySource(cfg.Policies)
		if err != nil {
			return err
		}
		engine, err := policies.New(ctx, pc)
		if err != nil {
			return fmt.Errorf("password rules: %w", err)
		}
		checker, err := passwordChecker(cfg)
		if err != nil {
			return err
		}
		u, err := addUser(ctx, db, hasher, engine.PasswordRules(), checker, phones, newUser{username: *username, name: *display, password: password,
			products: splitList(*products), phone: *phoneNumber, email: *email, customerID: *customerID}, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s (%s)\n", u.Username, u.ID)
	case "list":
		users, err := db.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tID\tNAME\tPRODUCTS\tFAILURES\tLOCKED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\n", u.Username, u.ID, u.DisplayName, strings.Join(u.Products, ","), u.FailedLogins, u.Locked)
		}
		return tw.Flush()
	case "unlock":
		u, err := db.UserByName(ctx, credential.CanonicalUsername(*username))
		if err != nil {
			return fmt.Errorf("unlock %q: %w", *username, err)
		}
		was, err := db.UnlockUser(ctx, u.ID, time.Now())
		if err != nil {
			return fmt.Errorf("unlock %q: %w", *username, err)
		}
		printUnlock(stdout, u.Username, was)
		if was {
			tellReplicas(ctx, db, u.ID, stderr)
		}
	case "phone":
		if !flagGiven(fs, "phone") {
			fmt.Fprint(stderr, adminUsage)
			return errors.New(`admin user phone: --phone is required (--phone "" removes the security phone)`)
		}
		u, err := setSecurityPhone(ctx, db, phones, logger, *username, *phoneNumber, time.Now(), stdout)
		if err != nil {
			return err
		}
		tellReplicas(ctx, db, u.ID, stderr)
	default:
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("unknown admin command %q", args[1])
	}
	return nil
}

// readPassword reads one line from stdin, so that passwords never appear
// in a process list or shell history.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// passwordChecker is the checker the gateway would build from cfg: zxcvbn's
// common passwords and the password.blocklist file.
func passwordChecker(cfg *config.File) (*credential.PasswordChecker, error) {
	var breached credential.Blocklist
	if path := cfg.Password.Blocklist; path != "" {
		var err error
		if breached, err = credential.LoadBlocklist(path); err != nil {
			return nil, err
		}
	}
	return credential.NewPasswordChecker(credential.CheckerConfig{Breached: breached})
}

// newUser is a profile to create. Phone and email may be empty.
type newUser struct {
	username, name, password string
	products                 []string
	phone, email             string
	// customerID links the profile to its customer record ("" for none).
	customerID string
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// knownProducts refuses products that name no configured route: such a
// profile would hold a product no request can reach, and a typo would go
// unnoticed until the customer is refused.
func knownProducts(cfg *config.File, products []string) error {
	routes := map[string]bool{}
	var names []string
	for _, r := range cfg.Routes {
		if !routes[r.Name] {
			names = append(names, r.Name)
		}
		routes[r.Name] = true
	}
	var unknown []string
	for _, p := range products {
		if !routes[p] {
			unknown = append(unknown, p)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("--products: no route is named %s (routes: %s)", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return nil
}

// addUser creates a customer profile after checking the username, the
// password rules (measured by passwords, judged as the policy would), the
// security phone (stored in E.164) and the email address.
func addUser(ctx context.Context, users interface {
	CreateUser(context.Context, store.User) error
}, hasher *credential.Hasher, rules policies.PasswordRules, passwords *credential.PasswordChecker, phones facts.Phones,
	nu newUser, now time.Time) (store.User, error) {
	name, password := credential.CanonicalUsername(nu.username), nu.password
	if err := credential.ValidUsername(name); err != nil {
		return store.User{}, fmt.Errorf("username: %w", err)
	}
	pf, err := passwords.Measure(ctx, password, credential.PasswordOwner{Username: name, Names: []string{nu.name}})
	if err != nil {
		return store.User{}, fmt.Errorf("password: %w", err)
	}
	if err := rules.Judge(pf); err != nil {
		return store.User{}, fmt.Errorf("password: %w", err)
	}
	var phone, email string
	if nu.phone != "" {
		_, e164, err := phones.Classify(ctx, nu.phone)
		if err != nil {
			return store.User{}, fmt.Errorf("--phone %q: %w", nu.phone, err)
		}
		phone = e164
	}
	if nu.email != "" {
		var err error
		if email, err = emailAddress(nu.email); err != nil {
			return store.User{}, err
		}
	}
	hash, err := hasher.Hash(ctx, password)
	if err != nil {
		return store.User{}, err
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return store.User{}, err
	}
	u := store.User{ID: "u_" + hex.EncodeToString(id), Username: name, DisplayName: nu.name,
		PasswordHash: hash, Products: nu.products, SecurityPhone: phone, Email: email, CustomerID: nu.customerID,
		CreatedAt: now, UpdatedAt: now}
	if err := users.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, fmt.Errorf("username %q is taken", name)
		}
		return store.User{}, err
	}
	return u, nil
}

// emailAddress checks an address typed for a profile: the address alone,
// as net/mail reads it, without a display name or angle brackets.
func emailAddress(raw string) (string, error) {
	a, err := mail.ParseAddress(raw)
	if err != nil {
		return "", fmt.Errorf("--email %q: %w", raw, err)
	}
	if a.Name != "" || a.Address != strings.TrimSpace(raw) {
		return "", fmt.Errorf("--email %q: give the address alone, like alice@example.com, without a display name", raw)
	}
	return a.Address, nil
}

// setSecurityPhone replaces the profile's security phone with raw, or
// removes it when raw is empty, as the admin API does
// (admin.SetSecurityPhone: VoIP numbers are refused). The change is logged
// with who made it: the operating-system user running the command. The
// number is logged masked.
func setSecurityPhone(ctx context.Context, db admin.PhoneUsers, phones facts.Phones, logger *slog.Logger, username, raw string, now time.Time, stdout io.Writer) (store.User, error) {
	c, err := admin.SetSecurityPhone(ctx, db, phones, username, raw, now)
	if pe, ok := errors.AsType[*admin.PhoneError](err); ok {
		return store.User{}, fmt.Errorf("--phone %q: %w", raw, pe)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("phone %q: %w", username, err)
	}
	u := c.User
	attrs := []any{"username", u.Username, "user_id", u.ID, "by", osUser(), "at", now.UTC(), "replaced", c.Replaced}
	if c.Removed {
		logger.Info("security phone removed by an administrator", attrs...)
	} else {
		logger.Info("security phone set by an administrator", append(attrs, "phone", c.Phone.Masked, "line_type", c.Phone.LineType)...)
	}
	printPhone(stdout, u.Username, c.Removed, c.Phone.Masked, c.Phone.LineType)
	return u, nil
}

// tellReplicas has the running gateways sharing the store drop their
// cached sessions of the user, so that they read the changed profile at
// once rather than when their cache entry expires (5 s at most), as a
// change made through the admin API does. With SQLite there is no channel
// to tell them on. A failure is reported, not returned: the change is made.
func tellReplicas(ctx context.Context, db *combined.Store, userID string, stderr io.Writer) {
	inv := compose.Invalidator(db, nil) // it only publishes: nothing to log
	if inv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := inv.Publish(ctx, session.Invalidation{UserID: userID}); err != nil {
		fmt.Fprintf(stderr, "warning: the running gateways were not told of the change (%v): they see it within 5 s\n", err)
	}
}

// osUser names the operating-system user running the command, for the
// audit log.
func osUser() string {
	u, err := user.Current()
	if err != nil {
		return "uid " + strconv.Itoa(os.Getuid())
	}
	return u.Username + " (uid " + u.Uid + ")"
}

// flagGiven reports whether the flag was set on the command line, even to
// "".
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			given = true
		}
	})
	return given
}

func cmdAdminKeys(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin keys "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, db, err := openConfigStore(ctx, fs, args)
	if err != nil {
		return err
	}
	defer db.Close()
	switch verb {
	case "rotate":
		signer, err := assertion.NewSigner(ctx, db, assertion.SignerConfig{Issuer: cfg.Issuer, TTL: cfg.Identity.AssertionTTL})
		if err != nil {
			return err
		}
		old := signer.KeyID()
		if err := signer.Rotate(ctx); err != nil {
			return err
		}
		printRotated(stdout, signer.KeyID(), old)
	case "list":
		keys, err := db.SigningKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY ID\tCREATED\tRETIRED")
		for _, k := range keys {
			retired := "-"
			if !k.RetiredAt.IsZero() {
				retired = k.RetiredAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.CreatedAt.UTC().Format(time.RFC3339), retired)
		}
		return tw.Flush()
	default:
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("unknown admin keys command %q", verb)
	}
	return nil
}

// openConfigStore parses args with a --config flag added to fs, loads the
// configuration and opens its store, creating data_dir on first use (an
// admin command may run before the first serve). Warnings go to fs's output.
func openConfigStore(ctx context.Context, fs *flag.FlagSet, args []string) (*config.File, *combined.Store, error) {
	cfg, err := parseConfigFlag(fs, args)
	if err != nil {
		return nil, nil, err
	}
	logger, err := newLogger(cfg.Log, fs.Output())
	if err != nil {
		return nil, nil, err
	}
	db, err := compose.OpenStore(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	return cfg, db, nil
}
