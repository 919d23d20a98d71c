// Package caddy keeps Portcullis working behind Caddy, the web server an
// operator may run in front of the gateway to terminate the public TLS. Its
// tests adapt the repository's Caddyfile.example with Caddy's own Caddyfile
// adapter and check that the result sends every host, /.portcullis/
// included, to the gateway with the browser's Host header intact.
package caddy
