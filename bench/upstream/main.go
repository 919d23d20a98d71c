// Command upstream is the legacy app the serve benchmark puts behind each
// proxy: every GET answers 200 with the same 1 KiB body, and it counts the
// requests it served and those that carried the gateway's identity (a user
// and an assertion), so that a run answered by a sign-in redirect is caught.
//
//	upstream -listen 127.0.0.1:0     # prints "listening ADDR" once ready
//
// GET /.bench/count on the upstream itself (not through a proxy) answers
// "TOTAL IDENTIFIED".
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/assertion"
)

// Body is what every request gets: 1 KiB of text.
var body = func() []byte {
	b := make([]byte, 1024)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	b[len(b)-1] = '\n'
	return b
}()

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
	var total, identified atomic.Int64
	length := []string{strconv.Itoa(len(body))}
	contentType := []string{"text/plain; charset=utf-8"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.bench/count" {
			fmt.Fprintf(w, "%d %d\n", total.Load(), identified.Load())
			return
		}
		total.Add(1)
		if r.Header.Get(assertion.HeaderUser) != "" && r.Header.Get(assertion.HeaderAssertion) != "" {
			identified.Add(1)
		}
		w.Header()["Content-Type"] = contentType
		w.Header()["Content-Length"] = length
		w.Write(body)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
