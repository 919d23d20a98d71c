package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// backend answers each connection with its name and the client address it
// saw, then echoes everything until the client's end of stream, then says
// "bye" and closes.
func backend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s %s\n", name, host)
				io.Copy(c, c)
				io.WriteString(c, "bye\n")
			}()
		}
	}()
	return ln.Addr().String()
}

// startFront serves a front on the backends and returns its address and
// what it has logged so far.
func startFront(t *testing.T, backends ...string) (string, func() string) {
	t.Helper()
	f, err := newFront(backends)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	var mu sync.Mutex
	f.log = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logged.Write(p) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), func() string { mu.Lock(); defer mu.Unlock(); return logged.String() }
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// exchange connects from local (any address when empty), sends msg, closes
// its writing half and returns all the backend said.
func exchange(t *testing.T, addr, local, msg string) []string {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(c)
	sc.Buffer(nil, 2<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestRoundRobinPerConnection(t *testing.T) {
	addr, _ := startFront(t, backend(t, "a"), backend(t, "b"))
	var got []string
	for range 4 {
		lines := exchange(t, addr, "", "ping\n")
		if len(lines) != 3 || lines[1] != "ping" || lines[2] != "bye" {
			t.Fatalf("answer %q, want the greeting, the echo and bye", lines)
		}
		got = append(got, strings.Fields(lines[0])[0])
	}
	if strings.Join(got, "") != "abab" {
		t.Errorf("backends in order %v, want a b a b", got)
	}
}

func TestHalfCloseCarriesTheRestOfTheStream(t *testing.T) {
	addr, _ := startFront(t, backend(t, "a"))
	big := strings.Repeat("x", 1<<20) + "\n"
	lines := exchange(t, addr, "", big)
	// The client's end of stream reached the backend, which then still
	// answered through the front.
	if len(lines) != 3 || len(lines[1]) != len(big)-1 || lines[2] != "bye" {
		t.Fatalf("got %d lines, want the greeting, 1 MiB echoed and bye", len(lines))
	}
}

func TestLoopbackClientAddressIsKept(t *testing.T) {
	addr, _ := startFront(t, backend(t, "a"))
	for _, local := range []string{"127.0.1.7", "127.0.2.9"} {
		lines := exchange(t, addr, local, "")
		if len(lines) < 1 || lines[0] != "a "+local {
			t.Errorf("from %s the backend saw %q", local, lines)
		}
	}
}

func TestUnreachableBackendClosesTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	addr, logged := startFront(t, dead)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The front closes the connection: the read ends without a byte.
	if got, err := io.ReadAll(c); len(got) != 0 || err != nil {
		t.Errorf("read %q, %v from a front whose backend does not listen", got, err)
	}
	if !strings.Contains(logged(), dead) {
		t.Errorf("logged %q, want the unreachable backend named", logged())
	}
}

func TestNewFrontRefusesBadBackends(t *testing.T) {
	for _, in := range [][]string{{""}, {" ", ""}, {"127.0.0.1"}, {"127.0.0.1:1", "nohost"}} {
		if _, err := newFront(in); err == nil {
			t.Errorf("newFront(%q) = nil error", in)
		}
	}
	f, err := newFront([]string{" 127.0.0.1:1 ", "", "127.0.0.1:2"})
	if err != nil || len(f.backends) != 2 || f.backends[0] != "127.0.0.1:1" {
		t.Errorf("newFront = %v, %v", f, err)
	}
}

func TestPickIsRoundRobinUnderConcurrency(t *testing.T) {
	f, err := newFront([]string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 300 {
				b := f.pick()
				mu.Lock()
				counts[b]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, b := range f.backends {
		if counts[b] != 800 {
			t.Errorf("%s picked %d times of 2400, want 800: %v", b, counts[b], counts)
		}
	}
}
