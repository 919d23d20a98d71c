package admin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/admin"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/phone"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
	"github.com/portcullis/portcullis/policies"
)

const (
	aliceToken = "alice-0123456789abcdef0123456789abcdef"
	bobToken   = "bob-fedcba9876543210fedcba9876543210fe"
	bankHost   = "bank.test"
)

// auditLog is the handler's log. slog's JSON handler writes each line
// under its own lock, so concurrent requests may share it; the tests read
// it once the requests are answered.
type auditLog struct {
	bytes.Buffer
}

// lines are the audit lines logged so far, decoded.
func (s *auditLog) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["audit"] == true {
			out = append(out, m)
		}
	}
	return out
}

// last is the last audit line.
func (s *auditLog) last(t *testing.T) map[string]any {
	t.Helper()
	ls := s.lines(t)
	if len(ls) == 0 {
		t.Fatalf("no audit line in %s", s.String())
	}
	return ls[len(ls)-1]
}

type env struct {
	db       *sqlite.Store
	sessions *session.Manager
	signer   *assertion.Signer
	h        http.Handler
	logs     *auditLog
	user     store.User
	now      time.Time
	logPath  string
	// decided and later are frank's two logged decisions, a VPN login
	// refused and then a login from a clean address.
	decided, later policies.Decision
}

// newEnv builds the API over a real SQLite store, session manager, signer
// and phone classifier, with alice's and bob's tokens (none when off), and
// a decision log holding one VPN login's decision.
func newEnv(t *testing.T, off bool) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, logs: &auditLog{}, now: time.Now().UTC().Truncate(time.Second)}
	now := func() time.Time { return e.now }
	e.user = store.User{ID: "u_frank", Username: "frank", SecurityPhone: "+12015550100", CreatedAt: e.now, UpdatedAt: e.now}
	if err := db.CreateUser(ctx, e.user); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, store.User{ID: "u_grace", Username: "grace", CreatedAt: e.now, UpdatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	e.sessions = session.New(session.Deps{Sessions: db, Records: db, Users: db, IdleTimeout: 15 * time.Minute,
		Log: log, Now: now, Rand: rand.Reader})
	if e.signer, err = assertion.NewSigner(ctx, db, assertion.SignerConfig{Issuer: "https://" + bankHost, Now: now}); err != nil {
		t.Fatal(err)
	}
	phones, err := phone.New(phone.Config{DefaultRegion: "US"})
	if err != nil {
		t.Fatal(err)
	}
	e.logPath = filepath.Join(dir, "decisions.jsonl")
	f, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	engine, err := policies.New(ctx, policies.Config{DecisionLog: f})
	if err != nil {
		t.Fatal(err)
	}
	e.decided = engine.Decide(ctx, policies.Input{Point: policies.PointLogin, Now: e.now.Unix(),
		Client:  policies.Client{IP: "198.51.100.7", Facts: policies.IPFacts{Checked: true, AnonymousVPN: true, Anonymous: true}},
		Account: policies.Account{Exists: true, Products: []string{"savings"}, UserID: e.user.ID},
		Request: policies.Request{Host: bankHost, Path: "/.portcullis/login", Method: http.MethodPost}})
	if e.decided.Allow || e.decided.DecisionID == "" {
		t.Fatalf("the VPN login was decided %+v", e.decided)
	}
	e.later = engine.Decide(ctx, policies.Input{Point: policies.PointLogin, Now: e.now.Unix(),
		Client:  policies.Client{IP: "203.0.113.9", Facts: policies.IPFacts{Checked: true}},
		Account: policies.Account{Exists: true, Products: []string{"savings"}, UserID: e.user.ID},
		Request: policies.Request{Host: bankHost, Path: "/.portcullis/login", Method: http.MethodPost}})
	var tokens []admin.Token
	if !off {
		tokens = []admin.Token{{Name: "alice", Secret: []byte(aliceToken)}, {Name: "bob", Secret: []byte(bobToken)}}
	}
	e.h, err = admin.New(admin.Deps{Tokens: tokens, Users: db, Sessions: e.sessions, Devices: db, Keys: e.signer,
		Phones: phones, ServerKey: bytes.Repeat([]byte{7}, 32), Log: log, Now: now,
		Why: func(ctx context.Context, id string) (*policies.WhyReport, error) {
			return policies.Why(ctx, []string{e.logPath}, id, engine)
		},
		Decisions: func(ctx context.Context, userID string, limit int) ([]policies.LoggedDecision, error) {
			return policies.UserDecisions(ctx, []string{e.logPath}, userID, limit)
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// call makes a request as the holder of token ("" sends none) and returns
// the status and the decoded body.
func (e *env) call(t *testing.T, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = "127.0.0.1:54321"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, w.Body, err)
	}
	return w.Code, m
}

// signIn opens a session of the user on bankHost, as a flow would, and
// returns its ID.
func (e *env) signIn(t *testing.T, u store.User) string { return e.signInFrom(t, u, "") }

// signInFrom is signIn from the registered device deviceID.
func (e *env) signInFrom(t *testing.T, u store.User, deviceID string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://"+bankHost+"/.portcullis/login", nil)
	sess, err := e.sessions.Start(httptest.NewRecorder(), r, u, []string{"pwd"}, deviceID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return sess.ID
}

// live reports whether the session manager lets the session in.
func (e *env) live(t *testing.T, sid string) bool {
	t.Helper()
	_, ok, err := e.sessions.ByID(t.Context(), sid, bankHost)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func wantAudit(t *testing.T, line map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if line[k] != v {
			t.Errorf("audit %s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	for _, k := range []string{"at", "remote_addr", "status"} {
		if _, ok := line[k]; !ok {
			t.Errorf("audit line lacks %s: %v", k, line)
		}
	}
}

func TestAdminRefusesWithoutAValidToken(t *testing.T) {
	e := newEnv(t, false)
	for _, tc := range []struct{ name, header string }{
		{"no header", ""},
		{"a wrong token", "Bearer " + strings.Replace(aliceToken, "a", "b", 1)},
		{"a prefix of a token", "Bearer " + aliceToken[:20]},
		{"a token with more after it", "Bearer " + aliceToken + "x"},
		{"another scheme", "Basic " + aliceToken},
		{"no scheme", aliceToken},
		{"an empty token", "Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/admin/v1/users/frank/unlock", nil)
			r.RemoteAddr = "127.0.0.1:4000"
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("status %d, WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			want := `{"status":"error","reason":"unauthenticated","message":"A valid administrator token is required."}` + "\n"
			if w.Body.String() != want {
				t.Errorf("body %s, want %s", w.Body, want)
			}
			wantAudit(t, e.logs.last(t), map[string]any{"who": "", "action": "user.unlock", "username": "frank",
				"outcome": policies.ReasonUnauthenticated, "remote_addr": "127.0.0.1:4000"})
		})
	}
	// An unknown user is refused the same way: nothing is looked up first.
	if code, _ := e.call(t, "wrong", http.MethodPost, "/admin/v1/users/nobody/unlock", ""); code != http.StatusUnauthorized {
		t.Errorf("unknown user with a wrong token: %d", code)
	}
	if got, _ := e.db.UserByName(t.Context(), "frank"); got.UpdatedAt != e.user.UpdatedAt {
		t.Error("a refused request changed the profile")
	}
	if logs := e.logs.String(); strings.Contains(logs, aliceToken[:20]) || strings.Contains(logs, bobToken[:20]) {
		t.Errorf("a token reached the log:\n%s", logs)
	}
}

func TestAdminOffWithoutTokens(t *testing.T) {
	e := newEnv(t, true)
	for _, token := range []string{"", aliceToken} {
		code, body := e.call(t, token, http.MethodPost, "/admin/v1/users/frank/unlock", "")
		if code != http.StatusNotFound || body["reason"] != policies.ReasonNotFound {
			t.Errorf("token %q: %d %v", token, code, body)
		}
	}
	if u, _ := e.db.UserByName(t.Context(), "frank"); u.UpdatedAt != e.user.UpdatedAt {
		t.Error("the API is off, yet the profile changed")
	}
}

func TestAdminUnlock(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	if _, err := e.db.AddLoginFailure(ctx, e.user.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.LockUser(ctx, e.user.ID, e.now); err != nil {
		t.Fatal(err)
	}
	code, body := e.call(t, aliceToken, http.MethodPost, "/admin/v1/users/Frank/unlock", "")
	if code != http.StatusOK || body["was_locked"] != true || body["username"] != "frank" || body["user_id"] != e.user.ID {
		t.Fatalf("unlock: %d %v", code, body)
	}
	u, err := e.db.UserByName(ctx, "frank")
	if err != nil || u.Locked || u.FailedLogins != 0 {
		t.Fatalf("after unlock: %+v %v", u, err)
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "user.unlock", "username": "frank",
		"user_id": e.user.ID, "outcome": policies.ReasonOK, "was_locked": true})
	if code, body = e.call(t, bobToken, http.MethodPost, "/admin/v1/users/frank/unlock", ""); code != http.StatusOK || body["was_locked"] != false {
		t.Fatalf("second unlock: %d %v", code, body)
	}
	if e.logs.last(t)["who"] != "bob" {
		t.Errorf("bob's unlock logged as %v", e.logs.last(t)["who"])
	}
}

// An unknown user is a 404 that says nothing more, for every endpoint.
func TestAdminUnknownUser(t *testing.T) {
	e := newEnv(t, false)
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/admin/v1/users/nobody/unlock", ""},
		{http.MethodPut, "/admin/v1/users/nobody/security-phone", `{"phone":"+12015550123"}`},
		{http.MethodGet, "/admin/v1/users/nobody/sessions", ""},
		{http.MethodDelete, "/admin/v1/users/nobody/sessions", ""},
		{http.MethodDelete, "/admin/v1/users/nobody/sessions/abc", ""},
		{http.MethodGet, "/admin/v1/users/nobody/devices", ""},
		{http.MethodDelete, "/admin/v1/users/nobody/devices/abc", ""},
	} {
		code, body := e.call(t, aliceToken, c.method, c.path, c.body)
		want := map[string]any{"status": "error", "reason": policies.ReasonNotFound, "message": "No such user."}
		if code != http.StatusNotFound || len(body) != len(want) || body["reason"] != want["reason"] || body["message"] != want["message"] {
			t.Errorf("%s %s: %d %v", c.method, c.path, code, body)
		}
		wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "username": "nobody", "outcome": policies.ReasonNotFound})
	}
	if code, body := e.call(t, aliceToken, http.MethodGet, "/admin/v1/nothing", ""); code != http.StatusNotFound || body["reason"] != policies.ReasonNotFound {
		t.Errorf("an unknown endpoint: %d %v", code, body)
	}
}

func TestAdminSecurityPhone(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	path := "/admin/v1/users/frank/security-phone"
	for _, tc := range []struct{ name, body, message string }{
		{"a VoIP number", `{"phone":"+44 56 1234 5678"}`, "VoIP"},
		{"not a number", `{"phone":"12"}`, "not a valid phone number"},
		{"not JSON", `phone=+12015550123`, "JSON object"},
		{"an unknown field", `{"phone":"+12015550123","extra":1}`, "JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.call(t, aliceToken, http.MethodPut, path, tc.body)
			if code != http.StatusBadRequest || body["reason"] != policies.ReasonBadRequest || !strings.Contains(body["message"].(string), tc.message) {
				t.Fatalf("%d %v", code, body)
			}
			if u, _ := e.db.UserByName(ctx, "frank"); u.SecurityPhone != e.user.SecurityPhone {
				t.Fatalf("a refused number changed the phone to %q", u.SecurityPhone)
			}
			wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "user.security_phone", "outcome": policies.ReasonBadRequest})
		})
	}
	code, body := e.call(t, aliceToken, http.MethodPut, path, `{"phone":"+1 (201) 555-0123"}`)
	if code != http.StatusOK || body["phone"] != "+1 ••• ••• ••23" || body["line_type"] != "fixed_line_or_mobile" || body["replaced"] != true {
		t.Fatalf("set: %d %v", code, body)
	}
	if u, _ := e.db.UserByName(ctx, "frank"); u.SecurityPhone != "+12015550123" {
		t.Fatalf("stored %q, want E.164", u.SecurityPhone)
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "user.security_phone", "username": "frank",
		"outcome": policies.ReasonOK, "phone": "+*********23", "removed": false, "replaced": true})
	if code, body = e.call(t, aliceToken, http.MethodPut, path, `{"phone":""}`); code != http.StatusOK || body["removed"] != true {
		t.Fatalf("remove: %d %v", code, body)
	}
	if u, _ := e.db.UserByName(ctx, "frank"); u.SecurityPhone != "" {
		t.Fatalf("phone %q after removing it", u.SecurityPhone)
	}
	if logs := e.logs.String(); strings.Contains(logs, "5550123") || strings.Contains(logs, "5550100") || strings.Contains(logs, "12345678") {
		t.Errorf("a phone number reached the log unmasked:\n%s", logs)
	}
}

func TestAdminSessions(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	grace, err := e.db.UserByName(ctx, "grace")
	if err != nil {
		t.Fatal(err)
	}
	// handles lists frank's sessions by their handles.
	handles := func() []string {
		t.Helper()
		code, body := e.call(t, aliceToken, http.MethodGet, "/admin/v1/users/frank/sessions", "")
		if code != http.StatusOK {
			t.Fatalf("list: %d %v", code, body)
		}
		var out []string
		for _, s := range body["sessions"].([]any) {
			s := s.(map[string]any)
			if s["host"] != bankHost || s["methods"].([]any)[0] != "pwd" {
				t.Errorf("listed %v", s)
			}
			out = append(out, s["id"].(string))
		}
		return out
	}
	first := e.signIn(t, e.user)
	hs := handles()
	if len(hs) != 1 || hs[0] == "" || strings.Contains(first, hs[0]) {
		t.Fatalf("handles %v of session %s", hs, first)
	}
	firstHandle := hs[0]
	second, graces := e.signIn(t, e.user), e.signIn(t, grace)
	for _, sid := range []string{first, second, graces} {
		if !e.live(t, sid) { // and cached by the manager
			t.Fatal("a new session is not live")
		}
	}
	if hs = handles(); len(hs) != 2 {
		t.Fatalf("handles %v", hs)
	}
	if logs := e.logs.String(); strings.Contains(logs, first) || strings.Contains(logs, second) {
		t.Error("a session ID reached the log")
	}

	// Ended through the API, a session is refused by this instance at
	// once, although the manager had it cached.
	code, body := e.call(t, aliceToken, http.MethodDelete, "/admin/v1/users/frank/sessions/"+firstHandle, "")
	if code != http.StatusOK || body["ended"] != 1.0 {
		t.Fatalf("end one: %d %v", code, body)
	}
	if e.live(t, first) {
		t.Error("the ended session is still let in")
	}
	if !e.live(t, second) {
		t.Error("ending one session ended another")
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "user.sessions.end", "username": "frank",
		"target_id": firstHandle, "outcome": policies.ReasonOK})
	// Another user's session, or one already ended, is not frank's.
	for _, sid := range []string{graces, first, firstHandle, "unknown"} {
		if code, body = e.call(t, aliceToken, http.MethodDelete, "/admin/v1/users/frank/sessions/"+sid, ""); code != http.StatusNotFound || body["message"] != "No such session." {
			t.Errorf("end %s: %d %v", sid, code, body)
		}
	}
	if !e.live(t, graces) {
		t.Error("grace's session was ended through frank")
	}

	third := e.signIn(t, e.user)
	e.live(t, third)
	if code, body = e.call(t, aliceToken, http.MethodDelete, "/admin/v1/users/frank/sessions", ""); code != http.StatusOK || body["ended"] != 2.0 {
		t.Fatalf("end all: %d %v", code, body)
	}
	if e.live(t, second) || e.live(t, third) || !e.live(t, graces) {
		t.Error("ending every session of frank: wrong sessions left")
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "user.sessions.end_all", "ended": 2.0})
}

// What makes TestAdminSessions meaningful: a session deleted from the store
// behind the manager's back is still let in while the manager has it
// cached, so only an end through the manager is refused at once.
func TestAdminSessionCacheKeepsAStoreDelete(t *testing.T) {
	e := newEnv(t, false)
	sid := e.signIn(t, e.user)
	e.live(t, sid)
	if err := e.db.DeleteSession(t.Context(), sid); err != nil {
		t.Fatal(err)
	}
	if !e.live(t, sid) {
		t.Fatal("the manager no longer caches sessions: TestAdminSessions does not show that the API ends them through it")
	}
}

func TestAdminDevices(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	for _, id := range []string{"dev1", "dev2"} {
		if err := e.db.AddDevice(ctx, store.Device{ID: id, UserID: e.user.ID, Name: "Firefox on Linux", CreatedAt: e.now,
			LastUsedAt: e.now, ExpiresAt: e.now.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.db.AddDevice(ctx, store.Device{ID: "gdev", UserID: "u_grace", Name: "Safari on macOS", CreatedAt: e.now,
		LastUsedAt: e.now, ExpiresAt: e.now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	code, body := e.call(t, aliceToken, http.MethodGet, "/admin/v1/users/frank/devices", "")
	if code != http.StatusOK || len(body["devices"].([]any)) != 2 {
		t.Fatalf("list: %d %v", code, body)
	}
	// The removal ends the login made from the device (the manager's
	// cache included), and leaves the others.
	fromDev1, fromDev2, fromNone := e.signInFrom(t, e.user, "dev1"), e.signInFrom(t, e.user, "dev2"), e.signIn(t, e.user)
	for _, sid := range []string{fromDev1, fromDev2, fromNone} {
		if !e.live(t, sid) {
			t.Fatal("a session is not live before the removal")
		}
	}
	if code, body = e.call(t, aliceToken, http.MethodDelete, "/admin/v1/users/frank/devices/dev1", ""); code != http.StatusOK ||
		body["ended"] != 1.0 || body["sessions_ended"] != 1.0 {
		t.Fatalf("remove: %d %v, want one device and its one session ended", code, body)
	}
	if e.live(t, fromDev1) {
		t.Error("the session signed in from the device outlived its removal")
	}
	if !e.live(t, fromDev2) || !e.live(t, fromNone) {
		t.Error("the removal ended sessions signed in from elsewhere")
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "user.devices.remove", "target_id": "dev1",
		"outcome": policies.ReasonOK, "sessions_ended": 1.0})
	for _, id := range []string{"dev1", "gdev"} {
		if code, body = e.call(t, aliceToken, http.MethodDelete, "/admin/v1/users/frank/devices/"+id, ""); code != http.StatusNotFound || body["message"] != "No such device." {
			t.Errorf("remove %s: %d %v", id, code, body)
		}
	}
	left, err := e.db.ListDevices(ctx, e.user.ID, e.now)
	if err != nil || len(left) != 1 || left[0].ID != "dev2" {
		t.Fatalf("left %+v %v", left, err)
	}
	if _, err := e.db.DeviceByID(ctx, "gdev", e.now); err != nil {
		t.Errorf("grace's device: %v", err)
	}
}

func TestAdminDecisionWhy(t *testing.T) {
	e := newEnv(t, false)
	code, body := e.call(t, aliceToken, http.MethodGet, "/admin/v1/decisions/"+e.decided.DecisionID+"/why", "")
	if code != http.StatusOK {
		t.Fatalf("why: %d %v", code, body)
	}
	logged := body["logged"].(map[string]any)
	if logged["decision_id"] != e.decided.DecisionID || logged["result"].(map[string]any)["reason"] != e.decided.Reason ||
		body["same_result"] != true || len(body["now"].(map[string]any)["chain"].([]any)) == 0 {
		t.Errorf("report %v", body)
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "decision.why", "target_id": e.decided.DecisionID, "outcome": policies.ReasonOK})
	if code, body = e.call(t, aliceToken, http.MethodGet, "/admin/v1/decisions/5b0c8e9a-3f41-4d2e-9c6a-7e1f2a3b4c5d/why", ""); code != http.StatusNotFound ||
		body["reason"] != policies.ReasonNotFound {
		t.Errorf("an unknown decision: %d %v", code, body)
	}
}

// A profile's decisions come from the decision log, newest first, as many
// as asked; a profile with none gets an empty list.
func TestAdminUserDecisions(t *testing.T) {
	e := newEnv(t, false)
	code, body := e.call(t, aliceToken, http.MethodGet, "/admin/v1/users/frank/decisions", "")
	if code != http.StatusOK {
		t.Fatalf("decisions: %d %v", code, body)
	}
	var ids []any
	for _, d := range body["decisions"].([]any) {
		ids = append(ids, d.(map[string]any)["decision_id"])
	}
	if want := []any{e.later.DecisionID, e.decided.DecisionID}; !slices.Equal(ids, want) {
		t.Errorf("frank's decisions %v, want %v (newest first)", ids, want)
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "user.decisions", "username": "frank", "outcome": policies.ReasonOK})
	if code, body = e.call(t, aliceToken, http.MethodGet, "/admin/v1/users/frank/decisions?limit=1", ""); code != http.StatusOK ||
		len(body["decisions"].([]any)) != 1 || body["decisions"].([]any)[0].(map[string]any)["decision_id"] != e.later.DecisionID {
		t.Errorf("limit 1: %d %v", code, body)
	}
	if code, body = e.call(t, aliceToken, http.MethodGet, "/admin/v1/users/grace/decisions", ""); code != http.StatusOK ||
		len(body["decisions"].([]any)) != 0 {
		t.Errorf("grace, who has none: %d %v", code, body)
	}
	for _, limit := range []string{"0", "1001", "ten"} {
		if code, body = e.call(t, aliceToken, http.MethodGet, "/admin/v1/users/frank/decisions?limit="+limit, ""); code != http.StatusBadRequest {
			t.Errorf("limit %s: %d %v", limit, code, body)
		}
	}
}

func TestAdminRotatesTheSigningKey(t *testing.T) {
	e := newEnv(t, false)
	old := e.signer.KeyID()
	code, body := e.call(t, bobToken, http.MethodPost, "/admin/v1/keys/rotate", "")
	if code != http.StatusOK || body["retired"] != old || body["key_id"] == old || body["key_id"] != e.signer.KeyID() {
		t.Fatalf("rotate: %d %v (signing %s, was %s)", code, body, e.signer.KeyID(), old)
	}
	keys, err := e.db.SigningKeys(t.Context())
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %+v %v", keys, err)
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "bob", "action": "keys.rotate", "target_id": e.signer.KeyID(), "retired": old})
}

// Concurrent administrators: every request is answered and audited once,
// and the tokens never reach the log.
func TestAdminConcurrentRequestsAreEachAudited(t *testing.T) {
	e := newEnv(t, false)
	const n = 16
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			token := aliceToken
			if i%2 == 1 {
				token = "not-a-token-" + aliceToken
			}
			r := httptest.NewRequest(http.MethodPost, "/admin/v1/users/frank/unlock", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			codes[i] = w.Code
		})
	}
	wg.Wait()
	ok, refused := 0, 0
	for i, c := range codes {
		switch {
		case i%2 == 0 && c == http.StatusOK:
			ok++
		case i%2 == 1 && c == http.StatusUnauthorized:
			refused++
		default:
			t.Errorf("request %d: %d", i, c)
		}
	}
	lines := e.logs.lines(t)
	if len(lines) != n || ok != n/2 || refused != n/2 {
		t.Errorf("%d audit lines, %d ok, %d refused", len(lines), ok, refused)
	}
	if strings.Contains(e.logs.String(), aliceToken[4:24]) {
		t.Error("a token reached the log")
	}
}

// A known path with another method is a JSON 404 like any unknown
// endpoint, audited, and still needs a token.
func TestAdminWrongMethod(t *testing.T) {
	e := newEnv(t, false)
	if code, body := e.call(t, aliceToken, http.MethodGet, "/admin/v1/users/frank/unlock", ""); code != http.StatusNotFound || body["reason"] != policies.ReasonNotFound {
		t.Errorf("GET unlock: %d %v", code, body)
	}
	wantAudit(t, e.logs.last(t), map[string]any{"who": "alice", "action": "unknown", "outcome": policies.ReasonNotFound})
	if code, _ := e.call(t, "", http.MethodGet, "/admin/v1/users/frank/unlock", ""); code != http.StatusUnauthorized {
		t.Errorf("GET unlock without a token: %d", code)
	}
}
