// Package rego holds Portcullis's shipped login policies: one Rego file per
// decision point or topic, a *_test.rego beside each, and the policy data
// (data.json) with the default settings. The files are embedded so the
// gateway binary carries them; policies.Engine loads them (leaving the
// tests out) unless it is pointed at a directory.
//
// Edit and test them with the stock tools:
//
//	go tool opa test rego/ --coverage
//	go tool opa fmt --list rego/
//	go tool opa check --strict rego/
package rego

import "embed"

// FS holds the policies, their tests and data.json.
//
//go:embed *.rego data.json
var FS embed.FS
