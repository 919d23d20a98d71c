// Command bareproxy is the baseline of the serve benchmark: an
// httputil.ReverseProxy with no authentication in front of one upstream,
// tuned as an operator would tune it — pooled 32 KiB copy buffers, an idle
// connection pool larger than the load's concurrency — and serving TLS with
// the gateway's own TLS settings (package certs, files mode), so that the
// comparison measures what Portcullis adds, not a different TLS set-up.
//
//	bareproxy -listen 127.0.0.1:0 -upstream http://127.0.0.1:9000 -cert c.pem -key k.pem
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/portcullis/portcullis/certs"
	"github.com/portcullis/portcullis/gateway"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (TLS)")
	upstream := flag.String("upstream", "", "upstream URL")
	cert := flag.String("cert", "", "PEM certificate")
	key := flag.String("key", "", "PEM private key")
	dataDir := flag.String("data", "", "directory the TLS manager may use")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		return fmt.Errorf("-upstream %q: want an http:// URL", *upstream)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mgr, err := certs.New(context.Background(), certs.Config{Mode: certs.ModeFiles, DataDir: *dataDir,
		Hosts: []string{"localhost"}, Files: certs.FilesConfig{Cert: *cert, Key: *key}}, logger)
	if err != nil {
		return err
	}
	defer mgr.Close()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		// The gateway's upstream transport: idle pools of 256 per host,
		// above the benchmark's 64 connections.
		Transport:  gateway.NewUpstreamTransport(),
		BufferPool: gateway.BufferPool(),
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: proxy, TLSConfig: mgr.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	fmt.Printf("listening %s\n", ln.Addr())
	return srv.ServeTLS(ln, "", "")
}
