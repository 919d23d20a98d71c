package endpoint

import (
	"net/http"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "" for accepted, else part of the error
	}{
		{"https://api.example.com/v1/hook?tenant=x", ""},
		{"http://127.0.0.1:8080/hook", ""},
		{"http://127.1.2.3/hook", ""},
		{"http://[::1]:9/hook", ""},
		{"http://localhost/hook", ""},
		{"http://LOCALHOST/hook", ""},
		{"http://api.example.com/hook", "https"},
		{"http://10.0.0.1/hook", "https"},
		{"http://localhost.example.com/hook", "https"},
		{"ftp://api.example.com/", "scheme"},
		{"/hook", "absolute"},
		{"https:opaque", "absolute"},
		{"https://user:pw@api.example.com/", "password"},
		{"https://api.example.com/#frag", "fragment"},
		{"https://api.example.com/%zz?token=s3cr3t", "parse URL"},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := Parse(tc.raw)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Parse = %v, want an error mentioning %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error quotes the URL: %v", err)
			}
		})
	}
}

func TestClientDoesNotModifyTheCallers(t *testing.T) {
	mine := &http.Client{}
	c := Client(mine)
	if mine.CheckRedirect != nil {
		t.Error("the caller's client was changed")
	}
	if c.CheckRedirect == nil || c.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("the copy follows redirects")
	}
	if Client(nil).CheckRedirect == nil {
		t.Error("a new client follows redirects")
	}
}
