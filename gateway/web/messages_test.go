package web

import (
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/portcullis/portcullis/rego"
)

// TestPasswordRefusalsSayWhatToChange: every message key the shipped
// policies give a new-password refusal has a text of its own, not the
// generic refusal.
func TestPasswordRefusalsSayWhatToChange(t *testing.T) {
	src, err := rego.FS.ReadFile("outcome.rego")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ast.ParseModuleWithOpts("outcome.rego", string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	site := NewSite(SiteConfig{Hosts: []string{"bank.example"}}, slog.New(slog.DiscardHandler), rand.Reader)
	seen := map[string]string{}
	for _, r := range m.Rules {
		if r.Head.Name.String() != "messages" || r.Head.Value == nil {
			continue
		}
		obj, ok := r.Head.Value.Value.(ast.Object)
		if !ok {
			t.Fatalf("outcome.messages is a %T", r.Head.Value.Value)
		}
		obj.Foreach(func(k, v *ast.Term) {
			reason, _ := k.Value.(ast.String)
			key, _ := v.Value.(ast.String)
			if !strings.HasPrefix(string(reason), "password_") {
				return
			}
			seen[string(reason)] = string(key)
			if msg := site.Message(string(key)); msg == MsgForbidden || msg == "" {
				t.Errorf("reason %s: message key %q has no text of its own", reason, key)
			}
		})
	}
	for _, reason := range []string{"password_too_short", "password_contains_name", "password_common", "password_guessable"} {
		if _, ok := seen[reason]; !ok {
			t.Errorf("outcome.messages has no key for %s", reason)
		}
	}
}
