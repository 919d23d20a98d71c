package migrations

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	tests := []struct {
		name     string
		fsys     fstest.MapFS
		versions []int
		err      string
	}{
		{"in version order", fstest.MapFS{
			"0002_b.sql": file("B"), "0010_c.sql": file("C"), "0001_a.sql": file("A"),
			"0003_d.sql": file("D"), "0004_e.sql": file("E"), "0005_f.sql": file("F"),
			"0006_g.sql": file("G"), "0007_h.sql": file("H"), "0008_i.sql": file("I"),
			"0009_j.sql": file("J"), "README.md": file("not a migration"),
		}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, ""},
		{"gap", fstest.MapFS{"0001_a.sql": file("A"), "0003_c.sql": file("C")}, nil, "want 2"},
		{"repeat", fstest.MapFS{"0001_a.sql": file("A"), "1_b.sql": file("B")}, nil, "want 2"},
		{"same number twice", fstest.MapFS{"0001_a.sql": file("A"), "0001_b.sql": file("B")}, nil, "want 2"},
		{"no number", fstest.MapFS{"initial.sql": file("A")}, nil, "NNNN_description.sql"},
		{"zero", fstest.MapFS{"0000_a.sql": file("A")}, nil, "NNNN_description.sql"},
		{"none", fstest.MapFS{}, nil, "no migrations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := Load(tc.fsys)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var versions []int
			for _, m := range ms {
				versions = append(versions, m.Version)
			}
			if !slices.Equal(versions, tc.versions) {
				t.Errorf("versions = %v, want %v", versions, tc.versions)
			}
			if ms[0].SQL != "A" || ms[9].SQL != "C" || ms[9].Name != "0010_c.sql" {
				t.Errorf("migrations read as %+v", ms)
			}
		})
	}
}
