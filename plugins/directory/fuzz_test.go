package directory

import (
	"errors"
	"testing"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

func FuzzParseJSON(f *testing.F) {
	f.Add(sample)
	f.Add([]byte(`{"customers": [` + rec() + `]}`))
	f.Add([]byte(`{"customers": [{"customer_id": 1}, {"x": 2}]}`))
	f.Add([]byte(`{"customers": [`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := parseJSON("c.json", data)
		if err != nil {
			if _, ok := errors.AsType[*LoadError](err); !ok {
				t.Fatalf("parseJSON returned %T, want a *LoadError", err)
			}
			return
		}
		if err := check("c.json", recs); err == nil {
			checkLoaded(t, recs)
		}
	})
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte(sampleCSV))
	f.Add([]byte(csvHeader + "a,Doe,0000,1950-01-01,,,,,\n"))
	f.Add([]byte(csvHeader + "a,\"Doe,0000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := parseCSV("c.csv", data)
		if err != nil {
			if _, ok := errors.AsType[*LoadError](err); !ok {
				t.Fatalf("parseCSV returned %T, want a *LoadError", err)
			}
			return
		}
		if err := check("c.csv", recs); err == nil {
			checkLoaded(t, recs)
		}
	})
}

// checkLoaded checks that records check accepted make a directory in
// which every customer is found by its own identity and each account.
func checkLoaded(t *testing.T, recs []located) {
	t.Helper()
	d := newFile("c.json", false, nil, nil)
	d.cur.Store(d.build(recs))
	for _, l := range recs {
		id := selfservice.Identity{LastName: l.r.LastName, TaxIDLast4: l.r.TaxIDLast4, DateOfBirth: l.r.DateOfBirth}
		if c, err := d.Identify(t.Context(), id); err != nil || c.ID != l.r.ID {
			t.Fatalf("Identify(%s) = %s, %v", l.r.ID, c.ID, err)
		}
		for _, a := range l.r.Accounts {
			if c, err := d.Verify(t.Context(), id, a.Number); err != nil || c.ID != l.r.ID || c.Accounts[0].Number != NormalizeNumber(a.Number) {
				t.Fatalf("Verify(%s) = %+v, %v", l.r.ID, c, err)
			}
		}
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add([]byte(aliceAnswer))
	f.Add([]byte(`{"match": false}`))
	f.Add([]byte(`{"match": true, "customer": {"customer_id": "c1", "accounts": null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeAnswer(data)
		if err != nil && c.ID != "" {
			t.Fatalf("decodeAnswer failed (%v) but returned customer %q", err, c.ID)
		}
		if err == nil && c.ID == "" {
			t.Fatal("decodeAnswer matched a customer without an ID")
		}
	})
}
