package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis/portcullis/gateway/admin"
	"github.com/portcullis/portcullis/policies"
)

// adminClient calls the admin API of a running gateway with a bearer
// token.
type adminClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// maxAdminResponse bounds what the client reads of one answer.
const maxAdminResponse = 8 << 20

// newAdminClient checks the server URL and reads the token. The token
// travels in every request, so plain http is accepted only to a loopback
// host (the admin listener's default): anything else needs https. The
// token file must be a secret file: not readable or writable by group or
// others, and not empty.
func newAdminClient(server, tokenFile string) (*adminClient, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--server %q: give the admin listener's URL alone, like http://127.0.0.1:9090", server)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("--server %q: plain http to a host that is not loopback would send the admin token in clear; use https (a TLS proxy in front of the admin listener)", server)
	default:
		return nil, fmt.Errorf("--server %q: the scheme must be http (loopback only) or https", server)
	}
	if tokenFile == "" {
		return nil, errors.New("--token-file is required with --server")
	}
	fi, err := os.Stat(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("--token-file: %s has mode %04o: group or others can read or write it, and it holds a secret; fix it with `chmod 600 %s`", tokenFile, perm, tokenFile)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	token := strings.TrimRight(string(b), "\r\n")
	if token == "" {
		return nil, fmt.Errorf("--token-file: %s is empty", tokenFile)
	}
	u.Path = ""
	return &adminClient{base: u, token: token, http: &http.Client{
		Timeout: time.Minute,
		// A redirect could carry the request elsewhere: refused.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// adminAPIError is the API's refusal, as the client reports it.
type adminAPIError struct {
	Status  int
	Reason  string
	Message string
}

func (e *adminAPIError) Error() string {
	return fmt.Sprintf("admin API: %d %s: %s", e.Status, e.Reason, e.Message)
}

// do sends a request for path (its parts escaped with url.PathEscape by
// the caller) and decodes the answer into out.
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminResponse))
	if err != nil {
		return fmt.Errorf("admin API: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &adminAPIError{Status: resp.StatusCode}
		var eb struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &eb) != nil || eb.Reason == "" {
			eb.Reason, eb.Message = "unexpected_answer", http.StatusText(resp.StatusCode)
		}
		e.Reason, e.Message = eb.Reason, eb.Message
		return e
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin API: decode answer: %w", err)
	}
	return nil
}

// optionalValue is a flag given alone (--revoke) or with a value
// (--revoke=ID, or --revoke ID, which cmdAdminRemote reads).
type optionalValue struct {
	set   bool
	value string
}

func (o *optionalValue) String() string   { return o.value }
func (o *optionalValue) IsBoolFlag() bool { return true }
func (o *optionalValue) Set(s string) error {
	o.set = true
	if s != "true" {
		o.value = s
	}
	return nil
}

// parseInterspersed parses args with fs, taking at most one word that is
// not a flag (an ID after --revoke) wherever it stands.
func parseInterspersed(fs *flag.FlagSet, args []string) (string, error) {
	var word string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			return word, nil
		}
		if word != "" {
			return "", fmt.Errorf("unexpected %q", fs.Arg(0))
		}
		word, args = fs.Arg(0), fs.Args()[1:]
	}
}

// cmdAdminRemote runs an admin command against the API of a running
// gateway.
func cmdAdminRemote(ctx context.Context, server, tokenFile string, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, adminUsage)
		return flag.ErrHelp
	}
	c, err := newAdminClient(server, tokenFile)
	if err != nil {
		return err
	}
	cmd := args[0] + " " + args[1]
	fs := flag.NewFlagSet("admin "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	username := fs.String("username", "", "username")
	phoneNumber := fs.String("phone", "", `the new security phone ("" removes it)`)
	var revoke optionalValue
	fs.Var(&revoke, "revoke", "end every session, or with an ID that one")
	remove := fs.String("remove", "", "the ID of the device to remove")
	limit := fs.Int("limit", admin.DefaultDecisions, "how many of the newest decisions to list (decisions)")
	word, err := parseInterspersed(fs, args[2:])
	if err != nil {
		return err
	}
	if word != "" && revoke.set && revoke.value == "" {
		revoke.value, word = word, ""
	}
	needUser := strings.HasPrefix(cmd, "user ")
	switch {
	case needUser && *username == "":
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("admin %s: --username is required", cmd)
	case cmd == "decision why" && word == "":
		fmt.Fprint(stderr, adminUsage)
		return errors.New("admin decision why: the decision ID is required")
	case word != "" && cmd != "decision why":
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("admin %s: unexpected %q", cmd, word)
	}
	user := "/admin/v1/users/" + url.PathEscape(*username)
	switch cmd {
	case "user unlock":
		var r admin.UnlockResult
		if err := c.do(ctx, http.MethodPost, user+"/unlock", nil, &r); err != nil {
			return err
		}
		printUnlock(stdout, r.Username, r.WasLocked)
	case "user phone":
		if !flagGiven(fs, "phone") {
			fmt.Fprint(stderr, adminUsage)
			return errors.New(`admin user phone: --phone is required (--phone "" removes the security phone)`)
		}
		var r admin.PhoneResult
		if err := c.do(ctx, http.MethodPut, user+"/security-phone", admin.PhoneRequest{Phone: *phoneNumber}, &r); err != nil {
			return err
		}
		printPhone(stdout, r.Username, r.Removed, r.Phone, r.LineType)
	case "user sessions":
		return remoteSessions(ctx, c, user, revoke, stdout)
	case "user devices":
		if *remove != "" {
			var r admin.RemovedDevice
			if err := c.do(ctx, http.MethodDelete, user+"/devices/"+url.PathEscape(*remove), nil, &r); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "removed device %s of %s and ended its %s; its next login asks for the extra verification again\n",
				*remove, *username, plural(r.SessionsEnded, "session", "sessions"))
			return nil
		}
		var r admin.DeviceList
		if err := c.do(ctx, http.MethodGet, user+"/devices", nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tREGISTERED\tLAST USED\tEXPIRES")
		for _, d := range r.Devices {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Name, stamp(d.CreatedAt), stamp(d.LastUsedAt), stamp(d.ExpiresAt))
		}
		return tw.Flush()
	case "user decisions":
		var r admin.DecisionList
		if err := c.do(ctx, http.MethodGet, user+"/decisions?limit="+strconv.Itoa(*limit), nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tPOINT\tRESULT\tREASON\tDECISION ID")
		for _, d := range r.Decisions {
			result := "deny"
			if d.Result.Allow {
				result = "allow"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", stamp(d.Time), d.Point, result, d.Result.Reason, d.DecisionID)
		}
		return tw.Flush()
	case "decision why":
		var r policies.WhyReport
		if err := c.do(ctx, http.MethodGet, "/admin/v1/decisions/"+url.PathEscape(word)+"/why", nil, &r); err != nil {
			return err
		}
		return writeWhy(stdout, &r, "the gateway's serving policy")
	case "keys rotate":
		var r admin.Rotated
		if err := c.do(ctx, http.MethodPost, "/admin/v1/keys/rotate", nil, &r); err != nil {
			return err
		}
		printRotated(stdout, r.KeyID, r.Retired)
	default:
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("admin %s: not a command of the admin API", cmd)
	}
	return nil
}

// remoteSessions lists the user's sessions, or ends them (revoke without
// a value) or one of them (revoke's value).
func remoteSessions(ctx context.Context, c *adminClient, user string, revoke optionalValue, stdout io.Writer) error {
	switch {
	case revoke.set && revoke.value != "":
		var r admin.Ended
		if err := c.do(ctx, http.MethodDelete, user+"/sessions/"+url.PathEscape(revoke.value), nil, &r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ended session %s of %s\n", revoke.value, r.Username)
	case revoke.set:
		var r admin.Ended
		if err := c.do(ctx, http.MethodDelete, user+"/sessions", nil, &r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ended %d sessions of %s\n", r.Ended, r.Username)
	default:
		var r admin.SessionList
		if err := c.do(ctx, http.MethodGet, user+"/sessions", nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tHOST\tMETHODS\tSIGNED IN\tLAST SEEN\tEXPIRES")
		for _, s := range r.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Host, strings.Join(s.Methods, ","), stamp(s.AuthTime), stamp(s.LastSeen), stamp(s.ExpiresAt))
		}
		return tw.Flush()
	}
	return nil
}

// stamp formats a time for a listing, "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// printUnlock, printPhone and printRotated say what an unlock, a phone
// change and a key rotation did, the same whether the command changed the
// store itself or asked a gateway's admin API.
func printUnlock(w io.Writer, username string, was bool) {
	if !was {
		fmt.Fprintf(w, "%s was not locked; its failure count is reset\n", username)
		return
	}
	fmt.Fprintf(w, "unlocked %s\n", username)
}

func printPhone(w io.Writer, username string, removed bool, masked, lineType string) {
	if removed {
		fmt.Fprintf(w, "removed the security phone of %s\n", username)
		return
	}
	fmt.Fprintf(w, "security phone of %s is now %s (%s)\n", username, masked, lineType)
}

func printRotated(w io.Writer, now, retired string) {
	fmt.Fprintf(w, "rotated: %s signs now, %s is retired (running gateways pick this up within a minute)\n", now, retired)
}
