package gateway

import "github.com/portcullis/portcullis/gateway/credential"

// PasswordParams are the password hasher's parameters.
type PasswordParams = credential.Params

// DefaultPasswordParams returns OWASP's argon2id parameters.
func DefaultPasswordParams() PasswordParams { return credential.DefaultParams() }
