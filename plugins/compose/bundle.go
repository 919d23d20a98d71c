package compose

import (
	"fmt"
	"os"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/policies"
)

// PolicySource is where the configuration says the policies come from: a
// directory, a bundle (with the public key its signature is checked
// against, read now), or the embedded policies.
func PolicySource(c config.Policies) (policies.Config, error) {
	if c.Bundle == "" {
		return policies.Config{Dir: c.Dir}, nil
	}
	b := &policies.Bundle{Path: c.Bundle, KeyID: c.BundleKeyID, AllowUnsigned: c.BundleUnsigned}
	if c.BundlePublicKey != "" {
		key, err := os.ReadFile(c.BundlePublicKey)
		if err != nil {
			return policies.Config{}, fmt.Errorf("policies.bundle_public_key: %w", err)
		}
		b.PublicKey = key
	}
	return policies.Config{Bundle: b}, nil
}

// watchesPolicies reports whether the policies are reloaded on change: a
// directory or a bundle, with policies.watch on.
func watchesPolicies(c config.Policies) bool {
	return (c.Dir != "" || c.Bundle != "") && c.Watch != nil && *c.Watch
}
