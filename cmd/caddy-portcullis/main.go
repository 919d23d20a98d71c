// Command caddy-portcullis is Caddy with its standard modules and
// Portcullis's: the portcullis and portcullis_admin Caddyfile directives
// (plugins/caddyportcullis). It takes Caddy's commands and flags:
//
//	caddy-portcullis run --config Caddyfile
//
// Caddyfile.embedded.example shows a site.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/portcullis/portcullis/plugins/caddyportcullis"
)

func main() { caddycmd.Main() }
