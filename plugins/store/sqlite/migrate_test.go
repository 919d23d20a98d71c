package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// embedded returns the migrations this release ships.
func embedded(t *testing.T) []migration {
	t.Helper()
	ms, err := loadMigrations(mustSub(migrationFiles, "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// applied is one row of schema_migrations.
type applied struct {
	version   int
	name      string
	appliedAt time.Time
}

func appliedMigrations(t *testing.T, s *Store) []applied {
	t.Helper()
	rows, err := s.read.QueryContext(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []applied
	for rows.Next() {
		var a applied
		if err := rows.Scan(&a.version, &a.name, timeCol{&a.appliedAt}); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrationsAreRecorded(t *testing.T) {
	before := time.Now()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms := embedded(t)
	got := appliedMigrations(t, s)
	if len(got) != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", len(got), len(ms))
	}
	for i, a := range got {
		if a.version != ms[i].Version || a.name != ms[i].Name {
			t.Errorf("schema_migrations[%d] = version %d %s, want version %d %s", i, a.version, a.name, ms[i].Version, ms[i].Name)
		}
		if a.appliedAt.Before(before.Add(-time.Second)) || a.appliedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("migration %d applied at %v, want about now", a.version, a.appliedAt)
		}
	}
	if got[0].version != 1 || got[0].name != "0001_initial.sql" {
		t.Errorf("first migration recorded as %d %s", got[0].version, got[0].name)
	}
}

func TestReopenDoesNotReapplyMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	first := appliedMigrations(t, s)
	s.Close()

	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again := appliedMigrations(t, s)
	if !slices.EqualFunc(first, again, func(a, b applied) bool {
		return a.version == b.version && a.name == b.name && a.appliedAt.Equal(b.appliedAt)
	}) {
		t.Errorf("schema_migrations changed on reopening:\nbefore %v\nafter  %v", first, again)
	}
}

// A later release adds a migration: opening an existing file applies only
// that one, keeps the data, and an older release then refuses the file.
func TestLaterMigrationIsApplied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	before := appliedMigrations(t, s)
	s.Close()

	ms := embedded(t)
	next := migration{
		Version: len(ms) + 1,
		Name:    "9999_later.sql",
		SQL: `ALTER TABLE users ADD COLUMN nickname TEXT NOT NULL DEFAULT 'none';
			CREATE TABLE later (id TEXT PRIMARY KEY) STRICT;`,
	}
	s, err = open(t.Context(), path, append(slices.Clone(ms), next))
	if err != nil {
		t.Fatalf("open with a later migration: %v", err)
	}
	after := appliedMigrations(t, s)
	if len(after) != len(before)+1 || after[len(after)-1].version != next.Version {
		t.Fatalf("schema_migrations after the later migration = %v", after)
	}
	if !after[0].appliedAt.Equal(before[0].appliedAt) {
		t.Errorf("migration 1 was applied again")
	}
	var nickname string
	if err := s.read.QueryRowContext(t.Context(), `SELECT nickname FROM users WHERE id = 'u1'`).Scan(&nickname); err != nil || nickname != "none" {
		t.Errorf("existing user after the later migration: nickname %q, %v", nickname, err)
	}
	if _, err := s.UserByName(t.Context(), "alice"); err != nil {
		t.Errorf("UserByName after the later migration: %v", err)
	}
	s.Close()

	s, err = Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("a release that does not know the latest migration opened the file")
	}
	if !strings.Contains(err.Error(), "newer than this release") {
		t.Errorf("error = %v, want it to say the schema is newer", err)
	}
}

// openBefore opens a new store at path with the migrations before the one
// named: the file an earlier release left.
func openBefore(t *testing.T, path, name string) *Store {
	t.Helper()
	ms := embedded(t)
	i := slices.IndexFunc(ms, func(m migration) bool { return m.Name == name })
	if i < 0 {
		t.Fatalf("no migration %s", name)
	}
	s, err := open(t.Context(), path, ms[:i])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// insertFirstUser inserts a user through the columns of the first schema,
// which CreateUser no longer fits once later migrations add columns.
func insertFirstUser(t *testing.T, s *Store, u store.User) {
	t.Helper()
	_, err := s.write.ExecContext(t.Context(), `INSERT INTO users
		(id, username, display_name, password_hash, failed_logins, locked, locked_at, products, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.DisplayName, u.PasswordHash, u.FailedLogins, u.Locked,
		timeArg(u.LockedAt), productsArg(u.Products), timeArg(u.CreatedAt), timeArg(u.UpdatedAt))
	if err != nil {
		t.Fatal(err)
	}
}

// insertFirstSession inserts a session through the columns of the first
// schema, which CreateSession no longer fits once later migrations add
// columns.
func insertFirstSession(t *testing.T, s *Store, sess store.Session) {
	t.Helper()
	methods, err := json.Marshal(sess.Methods)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.write.ExecContext(t.Context(), `INSERT INTO sessions
		(id, login_id, user_id, host, methods, auth_time, last_seen, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, sess.LoginID, sess.UserID, sess.Host, string(methods),
		timeArg(sess.AuthTime), timeArg(sess.LastSeen), timeArg(sess.ExpiresAt))
	if err != nil {
		t.Fatal(err)
	}
}

// A file from before the records migration loses the grants table and its
// outstanding exchange codes, and keeps its users.
func TestRecordsReplaceGrants(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s := openBefore(t, path, "0003_records.sql")
	insertFirstUser(t, s, store.User{ID: "u1", Username: "alice"})
	_, err := s.write.ExecContext(t.Context(), `INSERT INTO grants (id, session_id, host, expires_at) VALUES ('g1', 's1', 'h', 1)`)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string]int{"grants": 0, "grants_expires_at": 0, "records": 1, "records_expires_at": 1} {
		var n int
		if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_schema WHERE name = ?`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("after the upgrade, sqlite_schema has %d entries named %s, want %d", n, name, want)
		}
	}
	if _, err := s.UserByID(t.Context(), "u1"); err != nil {
		t.Errorf("UserByID after the upgrade: %v", err)
	}
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	r := store.Record{Kind: "exchange", ID: "g1", Subject: "s1", ExpiresAt: now.Add(time.Minute)}
	if err := s.PutRecord(t.Context(), r, now); err != nil {
		t.Errorf("PutRecord after the upgrade: %v", err)
	}
}

// A file from before the devices and factors migration keeps its users, who
// have no security phone and no email, and takes devices and factors.
func TestDevicesAndFactorsKeepUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s := openBefore(t, path, "0004_devices_factors.sql")
	base := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	users := []store.User{
		{
			ID: "u1", Username: "alice", DisplayName: "Alice", PasswordHash: "$argon2id$alice",
			FailedLogins: 2, Locked: true, LockedAt: base.Add(time.Minute), Products: []string{"savings", "cards"},
			CreatedAt: base, UpdatedAt: base.Add(2 * time.Minute),
		},
		{ID: "u2", Username: "bob", DisplayName: "Bob", PasswordHash: "$argon2id$bob", CreatedAt: base, UpdatedAt: base},
	}
	for _, u := range users {
		insertFirstUser(t, s, u)
	}
	s.Close()

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ListUsers(t.Context())
	if err != nil {
		t.Fatalf("ListUsers after the upgrade: %v", err)
	}
	if len(got) != len(users) {
		t.Fatalf("ListUsers after the upgrade returned %d users, want %d", len(got), len(users))
	}
	for i, want := range users {
		g := got[i]
		same := g.ID == want.ID && g.Username == want.Username && g.DisplayName == want.DisplayName &&
			g.PasswordHash == want.PasswordHash && g.FailedLogins == want.FailedLogins &&
			g.Locked == want.Locked && g.LockedAt.Equal(want.LockedAt) && slices.Equal(g.Products, want.Products) &&
			g.CreatedAt.Equal(want.CreatedAt) && g.UpdatedAt.Equal(want.UpdatedAt)
		if !same {
			t.Errorf("user %s after the upgrade = %+v, want %+v", want.ID, g, want)
		}
		if g.SecurityPhone != "" || g.Email != "" {
			t.Errorf("user %s after the upgrade has security phone %q and email %q, want none", want.ID, g.SecurityPhone, g.Email)
		}
	}

	if err := s.SetSecurityPhone(t.Context(), "u1", "+447700900123", base.Add(time.Hour)); err != nil {
		t.Errorf("SetSecurityPhone after the upgrade: %v", err)
	}
	if err := s.SetEmail(t.Context(), "u1", "alice@example.com", base.Add(time.Hour)); err != nil {
		t.Errorf("SetEmail after the upgrade: %v", err)
	}
	if u, err := s.UserByName(t.Context(), "alice"); err != nil || u.SecurityPhone != "+447700900123" || u.Email != "alice@example.com" || !u.Locked {
		t.Errorf("UserByName after setting the phone and email = %+v, %v", u, err)
	}
	d := store.Device{ID: "d1", UserID: "u1", Name: "Firefox", CreatedAt: base, LastUsedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.AddDevice(t.Context(), d); err != nil {
		t.Errorf("AddDevice after the upgrade: %v", err)
	}
	if _, err := s.DeviceByID(t.Context(), "d1", base); err != nil {
		t.Errorf("DeviceByID after the upgrade: %v", err)
	}
	f := store.Factor{ID: "f1", UserID: "u1", Kind: "totp", Name: "phone", Secret: []byte{0, 1}, CreatedAt: base}
	if err := s.AddFactor(t.Context(), f); err != nil {
		t.Errorf("AddFactor after the upgrade: %v", err)
	}
	if ok, err := s.AdvanceFactor(t.Context(), "u1", "f1", 1, base); err != nil || !ok {
		t.Errorf("AdvanceFactor after the upgrade = %v, %v; want true", ok, err)
	}
}

func TestFailedMigrationLeavesNoTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	ms := embedded(t)
	bad := migration{
		Version: len(ms) + 1,
		Name:    "9999_bad.sql",
		SQL: `CREATE TABLE half_done (id TEXT PRIMARY KEY) STRICT;
			INSERT INTO no_such_table VALUES (1);`,
	}
	_, err := open(t.Context(), path, append(slices.Clone(ms), bad))
	if err == nil || !strings.Contains(err.Error(), "9999_bad.sql") {
		t.Fatalf("open with a failing migration: error = %v, want one naming the migration", err)
	}

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open without the failing migration: %v", err)
	}
	defer s.Close()
	if got := appliedMigrations(t, s); len(got) != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", len(got), len(ms))
	}
	var n int
	if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'half_done'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed migration's table exists (count %d, %v)", n, err)
	}
}

func TestConnectionSettings(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.write, "journal_mode", "wal"},
		{s.write, "foreign_keys", "1"},
		{s.write, "busy_timeout", "5000"},
		{s.write, "synchronous", "1"}, // NORMAL
		{s.write, "query_only", "0"},
		{s.read, "journal_mode", "wal"},
		{s.read, "busy_timeout", "5000"},
		{s.read, "query_only", "1"},
	}
	for _, tc := range tests {
		var got string
		if err := tc.db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			pool := "write"
			if tc.db == s.read {
				pool = "read"
			}
			t.Errorf("%s pool: PRAGMA %s = %s, want %s", pool, tc.pragma, got, tc.want)
		}
	}
	if _, err := s.read.ExecContext(t.Context(), `DELETE FROM users`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// A file from before sessions and users became WITHOUT ROWID tables keeps
// them, readable by ID and by username, with their indexes.
func TestWithoutRowidKeepsSessionsAndUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s := openBefore(t, path, "0005_without_rowid.sql")
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	u := store.User{ID: "u1", Username: "alice", DisplayName: "Alice", Products: []string{"bank"}, Email: "a@example.com",
		CreatedAt: now, UpdatedAt: now}
	insertFirstUser(t, s, u)
	if _, err := s.write.ExecContext(t.Context(), `UPDATE users SET email = ? WHERE id = ?`, u.Email, u.ID); err != nil {
		t.Fatal(err)
	}
	sess := store.Session{ID: "s1", LoginID: "l1", UserID: "u1", Host: "bank.example", Methods: []string{"pwd", "otp"},
		AuthTime: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	insertFirstSession(t, s, sess)
	s.Close()

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gotSess, gotUser, err := s.GetSessionUser(t.Context(), "s1")
	if err != nil || gotSess.LoginID != "l1" || !slices.Equal(gotSess.Methods, sess.Methods) || gotUser.Email != u.Email {
		t.Fatalf("GetSessionUser after the upgrade: %+v %+v %v", gotSess, gotUser, err)
	}
	if _, err := s.UserByName(t.Context(), "alice"); err != nil {
		t.Errorf("UserByName after the upgrade: %v", err)
	}
	if err := s.CreateUser(t.Context(), store.User{ID: "u2", Username: "alice"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second alice after the upgrade: %v, want ErrConflict", err)
	}
	for _, name := range []string{"sessions_login_id", "sessions_expires_at"} {
		var n int
		if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_schema WHERE name = ?`, name).Scan(&n); err != nil || n != 1 {
			t.Errorf("index %s after the upgrade: %d, %v", name, n, err)
		}
	}
}

// A file from before profiles recorded customer IDs keeps its users, who
// have none and no consent; any number of them may go without one, while
// two profiles of one customer ID conflict.
func TestCustomerIDKeepsUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s := openBefore(t, path, "0006_customer_id.sql")
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	for _, u := range []store.User{
		{ID: "u1", Username: "alice", DisplayName: "Alice", Products: []string{"savings"}, CreatedAt: now, UpdatedAt: now},
		{ID: "u2", Username: "bob", DisplayName: "Bob", CreatedAt: now, UpdatedAt: now},
	} {
		insertFirstUser(t, s, u)
	}
	s.Close()

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{"u1", "u2"} {
		u, err := s.UserByID(t.Context(), id)
		if err != nil {
			t.Fatalf("UserByID(%s) after the upgrade: %v", id, err)
		}
		if u.CustomerID != "" || !u.ConsentAt.IsZero() || u.ConsentVersion != "" {
			t.Errorf("user %s after the upgrade has customer ID %q, consent %v %q; want none", id, u.CustomerID, u.ConsentAt, u.ConsentVersion)
		}
	}
	if _, err := s.UserByCustomerID(t.Context(), ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByCustomerID(\"\") after the upgrade: %v, want ErrNotFound", err)
	}
	carol := store.User{ID: "u3", Username: "carol", CustomerID: "C-1", ConsentAt: now, ConsentVersion: "2026-01", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(t.Context(), carol); err != nil {
		t.Fatalf("CreateUser with a customer ID after the upgrade: %v", err)
	}
	if u, err := s.UserByCustomerID(t.Context(), "C-1"); err != nil || u.ID != "u3" || !u.ConsentAt.Equal(now) || u.ConsentVersion != "2026-01" {
		t.Errorf("UserByCustomerID(C-1) = %+v, %v", u, err)
	}
	dave := store.User{ID: "u4", Username: "dave", CustomerID: "C-1", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(t.Context(), dave); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second profile for C-1: %v, want ErrConflict", err)
	}
	if err := s.CreateUser(t.Context(), store.User{ID: "u5", Username: "erin"}); err != nil {
		t.Errorf("another profile without a customer ID: %v", err)
	}
}

// A file from before sessions named their device keeps its sessions, which
// name none, for every read; sessions created after the upgrade keep theirs.
func TestSessionDeviceKeepsSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s := openBefore(t, path, "0009_session_device.sql")
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	u := store.User{ID: "u1", Username: "alice", CreatedAt: now, UpdatedAt: now}
	insertFirstUser(t, s, u)
	old := store.Session{ID: "s1", LoginID: "l1", UserID: u.ID, Host: "bank.example", Methods: []string{"pwd"},
		AuthTime: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	insertFirstSession(t, s, old)
	s.Close()

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fresh := store.Session{ID: "s2", LoginID: "l2", UserID: u.ID, Host: "bank.example", Methods: []string{"pwd"},
		AuthTime: now, LastSeen: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour), DeviceID: "d1"}
	if err := s.CreateSession(t.Context(), fresh); err != nil {
		t.Fatalf("CreateSession after the upgrade: %v", err)
	}
	for _, want := range []store.Session{old, fresh} {
		got, err := s.GetSession(t.Context(), want.ID)
		if err != nil || got.LoginID != want.LoginID || got.DeviceID != want.DeviceID {
			t.Errorf("GetSession(%s) after the upgrade = %+v, %v; want device %q", want.ID, got, err, want.DeviceID)
		}
		got, gotUser, err := s.GetSessionUser(t.Context(), want.ID)
		if err != nil || got.DeviceID != want.DeviceID || gotUser.ID != u.ID {
			t.Errorf("GetSessionUser(%s) after the upgrade = %+v, %+v, %v; want device %q", want.ID, got, gotUser, err, want.DeviceID)
		}
	}
	list, err := s.ListUserSessions(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != fresh.ID || list[0].DeviceID != fresh.DeviceID || list[1].ID != old.ID || list[1].DeviceID != "" {
		t.Errorf("ListUserSessions after the upgrade = %+v, want %s with device %q, then %s with none", list, fresh.ID, fresh.DeviceID, old.ID)
	}
}
