package postgres

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// Two replicas starting together on an empty schema both open it, and the
// migrations are applied once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	schema, dsn := freshSchema(t)
	const replicas = 4
	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	for i, s := range stores {
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping of store %d: %v", i, err)
		}
	}
	ms := released(t)
	n := adminQuery[int64](t, `SELECT count(*) FROM `+schema+`.schema_migrations`)
	distinct := adminQuery[int64](t, `SELECT count(DISTINCT version) FROM `+schema+`.schema_migrations`)
	if n != int64(len(ms)) || distinct != n {
		t.Errorf("schema_migrations holds %d rows (%d versions), want %d, one per migration", n, distinct, len(ms))
	}
}

// released returns the embedded migrations.
func released(t *testing.T) []migration {
	t.Helper()
	ms, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// A database whose schema a later release upgraded is refused, and left as
// it was.
func TestNewerSchemaIsRefused(t *testing.T) {
	schema, dsn := freshSchema(t)
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	latest := len(released(t))
	admin(t, fmt.Sprintf(`INSERT INTO %s.schema_migrations (version, name, applied_at)
		VALUES (%d, '%04[2]d_from_a_later_release.sql', now())`, schema, latest+1))
	s, err = Open(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open of a schema newer than the release succeeded")
	}
	t.Logf("Open: %v", err)
	if want := "newer than this release supports"; !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to say %q", err, want)
	}
	if n := adminQuery[int64](t, `SELECT count(*) FROM `+schema+`.schema_migrations`); n != int64(latest+1) {
		t.Errorf("schema_migrations holds %d rows after the refusal, want %d", n, latest+1)
	}
}

// A migration that fails leaves no trace: not its own changes, not those of
// the migrations before it in the same upgrade, and no record.
func TestFailedMigrationRollsBack(t *testing.T) {
	schema, dsn := freshSchema(t)
	ms, err := loadMigrations(fstest.MapFS{
		"0001_first.sql":  {Data: []byte(`CREATE TABLE first (id integer PRIMARY KEY);`)},
		"0002_broken.sql": {Data: []byte(`CREATE TABLE second (id integer PRIMARY KEY); SELECT no_such_function();`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := open(t.Context(), dsn, ms)
	if err == nil {
		s.Close()
		t.Fatal("open with a failing migration succeeded")
	}
	t.Logf("open: %v", err)
	if !strings.Contains(err.Error(), "0002_broken.sql") {
		t.Errorf("error = %q, want it to name the failing migration", err)
	}
	n := adminQuery[int64](t, `SELECT count(*) FROM pg_tables WHERE schemaname = '`+schema+`'`)
	if n != 0 {
		t.Errorf("the schema holds %d tables after a failed upgrade, want none", n)
	}
	// The first migration alone applies, and an upgrade later adds the
	// second once it is fixed.
	s, err = open(t.Context(), dsn, ms[:1])
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ms[1].SQL = `CREATE TABLE second (id integer PRIMARY KEY);`
	s, err = open(t.Context(), dsn, ms)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := adminQuery[int64](t, `SELECT max(version) FROM `+schema+`.schema_migrations`); n != 2 {
		t.Errorf("schema version %d after the upgrade, want 2", n)
	}
}

// A schema from before sessions named their device keeps its sessions,
// which name none, for every read; sessions created after the upgrade keep
// theirs.
func TestSessionDeviceKeepsSessions(t *testing.T) {
	schema, dsn := freshSchema(t)
	ms := released(t)
	i := slices.IndexFunc(ms, func(m migration) bool { return m.Name == "0003_session_device.sql" })
	if i < 0 {
		t.Fatal("no migration 0003_session_device.sql")
	}
	s, err := open(t.Context(), dsn, ms[:i])
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	admin(t, `INSERT INTO `+schema+`.sessions (id, login_id, user_id, host, methods, last_seen, expires_at)
		VALUES ('s1', 'l1', 'u1', 'bank.example', '{pwd}', '2031-03-04 05:00:00Z', '2031-03-04 06:00:00Z')`)

	s = openDSN(t, dsn)
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	fresh := store.Session{ID: "s2", LoginID: "l2", UserID: "u1", Host: "bank.example", Methods: []string{"pwd"},
		AuthTime: now, LastSeen: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour), DeviceID: "d1"}
	if err := s.CreateSession(t.Context(), fresh); err != nil {
		t.Fatalf("CreateSession after the upgrade: %v", err)
	}
	for id, want := range map[string]string{"s1": "", "s2": "d1"} {
		got, err := s.GetSession(t.Context(), id)
		if err != nil || got.DeviceID != want {
			t.Errorf("GetSession(%s) after the upgrade = %+v, %v; want device %q", id, got, err, want)
		}
		got, _, err = s.GetSessionUser(t.Context(), id)
		if err != nil || got.DeviceID != want {
			t.Errorf("GetSessionUser(%s) after the upgrade = %+v, %v; want device %q", id, got, err, want)
		}
	}
	list, err := s.ListUserSessions(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "s2" || list[0].DeviceID != "d1" || list[1].ID != "s1" || list[1].DeviceID != "" {
		t.Errorf("ListUserSessions after the upgrade = %+v, want s2 with device d1, then s1 with none", list)
	}
}
