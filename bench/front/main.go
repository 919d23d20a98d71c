// Command front is the serve benchmark's load balancer in front of several
// gateway replicas: a layer-4 TCP passthrough, as a cloud network load
// balancer is, so TLS ends at the gateways. Each accepted connection goes
// to the next backend in turn (round robin per connection) and bytes are
// copied both ways until each side has closed its half.
//
//	front -listen 127.0.0.1:0 -backends 127.0.0.1:9001,127.0.0.1:9002   # prints "listening ADDR"
//
// A client on a loopback address is connected to the backend from that same
// address, as a load balancer that preserves client addresses does, so the
// gateways see (and their per-address limits count) each client apart. A
// backend that cannot be reached closes the client's connection: nothing is
// retried elsewhere, so a failing replica shows in the load's errors.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (TCP)")
	backends := flag.String("backends", "", "comma-separated host:port of the backends, in round-robin order")
	flag.Parse()
	f, err := newFront(strings.Split(*backends, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "front:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "front:", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	if err := f.serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "front:", err)
		os.Exit(1)
	}
}

// front hands connections to its backends in turn.
type front struct {
	backends []string
	next     atomic.Uint64
	// log receives one line per connection that could not be relayed.
	log io.Writer
}

func newFront(backends []string) (*front, error) {
	var list []string
	for _, b := range backends {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, fmt.Errorf("backend %q: want host:port: %w", b, err)
		}
		list = append(list, b)
	}
	if len(list) == 0 {
		return nil, errors.New("-backends names no backend")
	}
	return &front{backends: list, log: os.Stderr}, nil
}

// pick returns the backend of the next connection.
func (f *front) pick() string {
	n := f.next.Add(1) - 1
	return f.backends[n%uint64(len(f.backends))]
}

// serve accepts connections until ln is closed.
func (f *front) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go f.relay(c.(*net.TCPConn), f.pick())
	}
}

// relay connects client to backend and copies both ways.
func (f *front) relay(client *net.TCPConn, backend string) {
	defer client.Close()
	d := net.Dialer{Timeout: 5 * time.Second}
	if ra, ok := client.RemoteAddr().(*net.TCPAddr); ok && ra.IP.IsLoopback() {
		d.LocalAddr = &net.TCPAddr{IP: ra.IP}
	}
	c, err := d.Dial("tcp", backend)
	if err != nil {
		fmt.Fprintf(f.log, "front: %s: %v\n", backend, err)
		return
	}
	server := c.(*net.TCPConn)
	defer server.Close()
	var wg sync.WaitGroup
	wg.Go(func() { pipe(server, client) })
	pipe(client, server)
	wg.Wait()
}

// pipe copies src to dst and then closes dst's writing half, so that the
// other side sees the end of the stream while the reverse direction goes
// on. A failed copy closes both connections, ending the other direction.
// On Linux io.Copy between TCP connections splices, without a user-space
// copy.
func pipe(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}
