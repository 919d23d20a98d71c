// Package migrations reads a store's schema migrations: numbered SQL files,
// NNNN_description.sql, one per change, applied in version order. Each store
// applies them its own way (SQLite one transaction per migration, PostgreSQL
// all in one under an advisory lock); reading and checking the set is the
// same for both.
package migrations

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// Migration is one numbered file.
type Migration struct {
	Version int
	// Name is the file name, kept in the store's record of what it applied.
	Name string
	SQL  string
}

// Load reads every *.sql file at the root of fsys in version order and
// checks that the versions run from 1 with no gap or repeat. Other files are
// ignored.
func Load(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("no migrations")
	}
	ms := make([]Migration, 0, len(names))
	for _, name := range names {
		m := Migration{Name: name} // Glob at the root: a bare file name
		if m.Version, err = version(m.Name); err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		m.SQL = string(b)
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if want := i + 1; m.Version != want {
			return nil, fmt.Errorf("migration %s: version %d, want %d (versions run from 1 with no gap or repeat)", m.Name, m.Version, want)
		}
	}
	return ms, nil
}

// version reads the version from a migration's file name.
func version(name string) (int, error) {
	digits, _, found := strings.Cut(name, "_")
	v, err := strconv.Atoi(digits)
	if !found || err != nil || v < 1 {
		return 0, fmt.Errorf("migration %s: the name must be NNNN_description.sql, NNNN from 1", name)
	}
	return v, nil
}
