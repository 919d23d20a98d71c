package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSONIsStrict(t *testing.T) {
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"exact fields", `{"username":"alice","password":"secret-secret"}`, true},
		{"one field", `{"username":"alice"}`, true},
		{"field name in another case", `{"Username":"alice","password":"p"}`, false},
		{"all capitals", `{"USERNAME":"alice","PASSWORD":"p"}`, false},
		{"duplicate key, last wins in encoding/json", `{"username":"bob","username":"alice","password":"p"}`, false},
		{"duplicate key in another case", `{"username":"bob","userName":"alice","password":"p"}`, false},
		{"duplicate password", `{"username":"alice","password":"p","password":"q"}`, false},
		{"unknown field", `{"username":"alice","password":"p","admin":true}`, false},
		{"trailing data", `{"username":"alice","password":"p"} {}`, false},
		{"not an object", `["alice","p"]`, false},
		{"empty", ``, false},
		{"truncated", `{"username":"alice"`, false},
		{"escaped duplicate", `{"username":"bob","\u0075sername":"alice"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/.portcullis/api/v1/login", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			var req struct {
				Username string `json:"username"`
				Password string `json:"password"`
			}
			err := DecodeJSON(httptest.NewRecorder(), r, &req)
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeJSON(%s) = %v, want ok %v", tc.body, err, tc.ok)
			}
			var e *Error
			if err != nil && (!errors.As(err, &e) || e.Status != http.StatusBadRequest) {
				t.Fatalf("DecodeJSON(%s) = %v, want a 400", tc.body, err)
			}
		})
	}
	t.Run("nested duplicate", func(t *testing.T) {
		if err := checkJSONKeys([]byte(`{"a":{"b":1,"b":2}}`), map[string]bool{"a": true}); err == nil {
			t.Fatal("a duplicate key inside a nested object was accepted")
		}
		if err := checkJSONKeys([]byte(`{"a":[{"b":1},{"b":2}]}`), map[string]bool{"a": true}); err != nil {
			t.Fatalf("the same key in two array elements was refused: %v", err)
		}
	})
}

func TestWrongContentTypeIsNotACSRFFailure(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/.portcullis/api/v1/login", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "text/plain")
	err := CheckJSON(r)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnsupportedMediaType {
		t.Fatalf("checkJSON(text/plain) = %v, want a 415", err)
	}
	if errors.Is(err, errCSRF) || !errors.Is(err, errNotJSON) {
		t.Fatalf("a 415 is logged as %v, want errNotJSON and not a CSRF failure", e.Err)
	}
}
