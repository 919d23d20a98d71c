package smtp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a minimal SMTP server over a net.Listener: enough of RFC
// 5321, 3207 (STARTTLS) and 4954 (AUTH PLAIN) to take one message per
// session and record what it was told.
type fakeServer struct {
	// Set before start.
	tls          *tls.Config // offer STARTTLS with it (nil: don't)
	implicitTLS  bool        // speak TLS from the first byte
	user, pass   string      // offer AUTH PLAIN after TLS and require these
	rejectRcpt   bool        // refuse every recipient
	silent       bool        // never send the greeting
	addr         string
	mu           sync.Mutex
	sessions     []*session
	conns        []net.Conn
	listenerDone chan struct{}
	quit         chan struct{}
}

// session is what one client did.
type session struct {
	tls      bool // the session was encrypted when MAIL was given
	authUser string
	authPass string
	from     string
	rcpt     []string
	data     []byte
}

// start listens on a loopback port until the test ends.
func (f *fakeServer) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if f.implicitTLS {
		ln = tls.NewListener(ln, f.tls)
	}
	f.addr = ln.Addr().String()
	f.listenerDone = make(chan struct{})
	f.quit = make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		<-f.listenerDone
		close(f.quit)
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		wg.Wait()
	})
	go func() {
		defer close(f.listenerDone)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, conn)
			f.mu.Unlock()
			wg.Go(func() {
				defer conn.Close()
				if f.silent {
					<-f.quit
					return
				}
				f.serve(conn)
			})
		}
	}()
}

func (f *fakeServer) port() string {
	_, p, _ := net.SplitHostPort(f.addr)
	return p
}

func (f *fakeServer) got() []*session {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*session(nil), f.sessions...)
}

func (f *fakeServer) serve(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, encrypted := conn.(*tls.Conn)
	tp := textproto.NewConn(conn)
	s := &session{}
	reply := func(format string, args ...any) bool { return tp.PrintfLine(format, args...) == nil }
	if !reply("220 fake.test ESMTP") {
		return
	}
	authed := false
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"fake.test", "8BITMIME"}
			if f.tls != nil && !encrypted && !f.implicitTLS {
				ext = append(ext, "STARTTLS")
			}
			if f.user != "" && encrypted {
				ext = append(ext, "AUTH PLAIN")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				reply("250%s%s", sep, e)
			}
		case "STARTTLS":
			if f.tls == nil || encrypted {
				reply("502 5.5.1 not offered")
				continue
			}
			reply("220 2.0.0 go ahead")
			tc := tls.Server(conn, f.tls)
			if tc.Handshake() != nil {
				return
			}
			conn, encrypted = tc, true
			tp = textproto.NewConn(conn)
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			b, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(b), "\x00")
			if !strings.EqualFold(mech, "PLAIN") || err != nil || len(parts) != 3 {
				reply("501 5.5.2 bad AUTH")
				continue
			}
			s.authUser, s.authPass = parts[1], parts[2]
			if parts[1] != f.user || parts[2] != f.pass {
				reply("535 5.7.8 authentication failed")
				continue
			}
			authed = true
			reply("235 2.7.0 ok")
		case "MAIL":
			if f.user != "" && !authed {
				reply("530 5.7.0 authentication required")
				continue
			}
			s.tls = encrypted
			s.from = strings.TrimSuffix(strings.TrimPrefix(strings.Fields(arg)[0], "FROM:<"), ">")
			reply("250 2.1.0 ok")
		case "RCPT":
			addr := strings.TrimSuffix(strings.TrimPrefix(arg, "TO:<"), ">")
			if f.rejectRcpt {
				reply("550 5.1.1 <%s>: Recipient address rejected: user 12345678 unknown", addr)
				continue
			}
			s.rcpt = append(s.rcpt, addr)
			reply("250 2.1.5 ok")
		case "DATA":
			reply("354 end with .")
			// Read raw, dot-stuffing and all, to check what went on the
			// wire; undo the stuffing here.
			var raw []byte
			r := tp.R
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				raw = append(raw, strings.TrimPrefix(l, ".")...)
			}
			s.data = raw
			f.mu.Lock()
			f.sessions = append(f.sessions, s)
			f.mu.Unlock()
			s = &session{}
			reply("250 2.0.0 queued as 7F3A")
		case "RSET", "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 5.5.2 what?")
		}
	}
}

// selfSigned is a certificate for 127.0.0.1 and localhost, and a pool that
// trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}
