// Package faultproxy is a TCP proxy for tests that take a store's server
// away and give it back: it forwards connections to a target until Cut,
// which closes every connection and turns new ones away (they are accepted
// and closed at once, as by a server that went down), Stall, which keeps
// the connections open but carries nothing more over them (a link gone
// silent), and Restore, after which connections are forwarded again on the
// same address.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to its target. It is safe for concurrent
// use.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]bool
	cut     bool
	stalled bool
	resumed *sync.Cond // signalled when stalled is cleared
	wg      sync.WaitGroup
}

// New starts a proxy on a loopback port to target (host:port), stopped
// when the test ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.resumed = sync.NewCond(&p.mu)
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		p.Cut()
		ln.Close()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Host and Port are Addr's parts.
func (p *Proxy) Host() string { h, _, _ := net.SplitHostPort(p.Addr()); return h }
func (p *Proxy) Port() string { _, port, _ := net.SplitHostPort(p.Addr()); return port }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Go(func() { p.copy(up, c); p.close(up) })
		p.wg.Go(func() { p.copy(c, up); p.close(c) })
	}
}

// copy forwards what src sends to dst, holding it while the proxy is
// stalled, until either side closes.
func (p *Proxy) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.stalled && !p.cut {
				p.resumed.Wait()
			}
			cut := p.cut
			p.mu.Unlock()
			if cut {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) close(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// Cut closes every connection through the proxy and turns new ones away
// until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.resumed.Broadcast()
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Stall keeps every connection open but holds what either side sends,
// until Restore (or Cut).
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Restore forwards new connections again, and what stalled ones held.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut, p.stalled = false, false
	p.resumed.Broadcast()
	p.mu.Unlock()
}
