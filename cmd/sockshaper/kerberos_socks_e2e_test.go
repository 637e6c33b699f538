package main

import (
	"bytes"
	be "encoding/binary"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// gssSOCKS is a SOCKS5 client logging in with GSS-API (RFC 1961) with a token
// built around a real ticket.
type gssSOCKS struct {
	t *testing.T
	c net.Conn
}

// greetGSS connects, offers methods and returns the method the proxy chose.
func greetGSS(t *testing.T, addr string, methods ...byte) (*gssSOCKS, byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(append([]byte{5, byte(len(methods))}, methods...))
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel[0] != 5 {
		t.Fatalf("method reply %x, %v", sel, err)
	}
	return &gssSOCKS{t: t, c: c}, sel[1]
}

// send writes an RFC 1961 message.
func (g *gssSOCKS) send(typ byte, token []byte) {
	g.c.Write(be.BigEndian.AppendUint16([]byte{1, typ}, uint16(len(token))))
	g.c.Write(token)
}

// read reads an RFC 1961 message, or the abort message (typ 0xff, nil).
func (g *gssSOCKS) read() (typ byte, token []byte, err error) {
	var head [4]byte
	if _, err := io.ReadFull(g.c, head[:2]); err != nil {
		return 0, nil, err
	}
	if head[1] == 0xff {
		return 0xff, nil, nil
	}
	if _, err := io.ReadFull(g.c, head[2:]); err != nil {
		return 0, nil, err
	}
	token = make([]byte, be.BigEndian.Uint16(head[2:]))
	_, err = io.ReadFull(g.c, token)
	return head[1], token, err
}

// connect sends a CONNECT to target (an IPv4 address) and reads the reply code.
func (g *gssSOCKS) connect(target string) byte {
	ap := netip.MustParseAddrPort(target)
	a := ap.Addr().As4()
	g.c.Write([]byte{5, 1, 0, 1, a[0], a[1], a[2], a[3], byte(ap.Port() >> 8), byte(ap.Port())})
	var reply [10]byte
	if _, err := io.ReadFull(g.c, reply[:]); err != nil {
		g.t.Fatalf("CONNECT reply %x, %v", reply, err)
	}
	return reply[1]
}

// TestKerberosSOCKS5 runs RFC 1961 against the built binary with a Go client:
// offered both GSS-API and username/password, the proxy picks GSS-API; alice's
// ticket is accepted with mutual authentication and a Wrap-token protection
// level (and, NEC style, a bare byte); her CONNECT then goes through in the
// clear and her accounting line names her and her group. A skewed clock gets
// the abort message; so does a protection level other than none, and its line
// says so. A client that offers only passwords still gets RFC 1929.
func TestKerberosSOCKS5(t *testing.T) {
	p := startKrbProxy(t)
	d := p.start(t, krbConfig(""))
	echo := echoServer(t)
	tk := p.k.ServiceTicket("alice@"+kdctest.Realm, proxySOCKSService)

	g, method := greetGSS(t, d.listen, 2, 1)
	if method != 1 {
		t.Fatalf("offered username/password and GSS-API: method %d, want 1 (GSS-API)", method)
	}
	token, a := tk.Token(t, kdctest.TokenOptions{Mutual: true})
	g.send(1, token)
	if typ, rep, err := g.read(); err != nil || typ != 1 || len(rep) == 0 {
		t.Fatalf("AP-REP message: type %d, %v", typ, err)
	}
	wt := gssapi.WrapToken{EC: 12, SndSeqNum: uint64(a.SeqNumber), Payload: []byte{0}}
	if err := wt.SetCheckSum(a.SubKey, keyusage.GSSAPI_INITIATOR_SEAL); err != nil {
		t.Fatal(err)
	}
	level, _ := wt.Marshal()
	g.send(2, level)
	typ, reply, err := g.read()
	var got gssapi.WrapToken
	if err != nil || typ != 2 || got.Unmarshal(reply, true) != nil || !bytes.Equal(got.Payload, []byte{0}) {
		t.Fatalf("protection level reply: type %d %x, %v", typ, reply, err)
	}
	if ok, err := got.Verify(a.SubKey, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok {
		t.Fatalf("the proxy's Wrap token does not verify: %v", err)
	}
	if code := g.connect(echo); code != 0 {
		t.Fatalf("CONNECT after GSS-API: reply %d", code)
	}
	roundTrip(t, g.c, "kerberised")
	g.c.Close()

	nec, _ := greetGSS(t, d.listen, 1)
	tok, _ := tk.Token(t, kdctest.TokenOptions{})
	nec.send(1, tok)
	nec.send(2, []byte{0})
	if typ, level, err := nec.read(); err != nil || typ != 2 || !bytes.Equal(level, []byte{0}) {
		t.Fatalf("NEC protection level reply: type %d %x, %v", typ, level, err)
	}
	if code := nec.connect(echo); code != 0 {
		t.Fatalf("CONNECT after NEC-style GSS-API: reply %d", code)
	}
	nec.c.Close()

	for _, tc := range []struct {
		name   string
		opts   kdctest.TokenOptions
		level  []byte
		reason string
	}{
		{"clock an hour off", kdctest.TokenOptions{Skew: time.Hour}, nil, "auth_kerberos_clock_skew"},
		{"confidentiality asked", kdctest.TokenOptions{}, []byte{2}, "gssapi_protection"},
	} {
		g, _ := greetGSS(t, d.listen, 1)
		tok, _ := tk.Token(t, tc.opts)
		g.send(1, tok)
		if tc.level != nil {
			g.send(2, tc.level)
		}
		if typ, _, err := g.read(); err != nil || typ != 0xff {
			t.Errorf("%s: message type %d, %v; want the abort message", tc.name, typ, err)
		}
		if n := waitLines(d, "", tc.reason, 1); n != 1 {
			t.Errorf("%s: %d accounting lines with close reason %s", tc.name, n, tc.reason)
		}
	}
	if status := socksLogin(t, d.listen, "alice", password); status != 0 {
		t.Errorf("username/password only: status %d", status)
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_ok"}`, 3)
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_clock_skew"}`, 1)
	d.waitMetric(`sockshaper_auth_attempts_total{result="ok"}`, 1)
	ok := 0
	for _, l := range d.sessionLines("alice", "") {
		if l["front"] == "socks5" && l["command"] == "connect" && l["result"] == "ok" && l["group"] == "staff" {
			ok++
		}
	}
	if ok != 2 {
		t.Errorf("alice's GSS-API sessions: %d accounting lines front=socks5 connect ok group=staff, want 2:\n%v", ok, d.sessionLines("alice", ""))
	}
}

// waitLines waits up to 5 s for n accounting lines of user with close reason
// (either "" for any) and returns how many there are.
func waitLines(d *process, user, reason string, n int) int {
	for deadline := time.Now().Add(5 * time.Second); len(d.sessionLines(user, reason)) < n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return len(d.sessionLines(user, reason))
}

// TestKerberosSOCKS5WithCurl: curl --socks5-gssapi (MIT libgssapi) against the
// built binary. Debian 12's curl 7.88 has two bugs of its own (see
// proxy/socks5's TestGSSAPIWithCurl, which runs curl's whole exchange against
// the front reliably): it forgets that it offered GSS-API when the method
// reply does not come within the call that sent the greeting (against the
// race-built daemon it nearly never does), and after a good sub-negotiation
// it never sends its request. So curl is run up to 20 times for the path that
// sends its ticket, which must end with curl reporting access granted and the
// proxy counting alice's Kerberos login; when curl never takes it, the test
// checks through methodFirst what curl saw: the daemon choosing GSS-API (05
// 01) for a client that offers it. TestKerberosSOCKS5 takes a Go client
// through the whole exchange and the request.
func TestKerberosSOCKS5WithCurl(t *testing.T) {
	curl := requireTool(t, "curl", "curl")
	if out, _ := exec.Command(curl, "-V").Output(); !strings.Contains(string(out), "GSS-API") {
		t.Fatalf("curl without GSS-API: %s", out)
	}
	p := startKrbProxy(t)
	d := p.start(t, krbConfig(""))
	web := helloServer(t)
	alice := p.k.Kinit("alice@" + kdctest.Realm)
	run := func(proxyAddr string) (string, error) {
		port := portOf(proxyAddr)
		cmd := exec.Command(curl, "-v", "-sS", "--max-time", "20", "--proxy", "socks5h://proxy.test:"+port,
			"--resolve", "proxy.test:"+port+":127.0.0.1", "--socks5-gssapi", web.URL+"/page")
		cmd.Env = p.k.Env(alice)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	const curlsBug = "per-message authentication is not supported"
	for try := 1; try <= 20; try++ {
		out, err := run(d.listen)
		if strings.Contains(out, curlsBug) {
			continue
		}
		t.Logf("curl --socks5-gssapi, try %d: %v\n%s", try, err, out)
		fetched := err == nil && strings.HasSuffix(out, "hello from /page")
		granted := strings.Contains(out, "SOCKS5 server authenticated user alice@CAMPUS.EXAMPLE with GSS-API") &&
			strings.Contains(out, "SOCKS5 access without GSS-API data protection granted")
		if !fetched && !granted {
			t.Errorf("curl --socks5-gssapi: %v\n%s", err, out)
		}
		d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_ok"}`, 1)
		return
	}
	shim, replies := methodFirst(t, d.listen)
	out, _ := run(shim)
	t.Logf("curl never sent its ticket in 20 tries (its own bug); through the shim it saw:\n%s", out)
	select {
	case reply := <-replies:
		if reply != [2]byte{5, 1} {
			t.Errorf("the daemon's method reply to curl's greeting: %x, want 0501 (GSS-API)", reply)
		}
	case <-time.After(5 * time.Second):
		t.Error("the daemon did not answer curl's greeting")
	}
}

// methodFirst listens for curl and relays each connection to the proxy at
// proxyAddr, having written the SOCKS5 method reply "GSS-API" (05 01) to curl
// at once; the proxy's own method reply to curl's greeting goes to replies,
// not to curl.
func methodFirst(t *testing.T, proxyAddr string) (addr string, replies <-chan [2]byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan [2]byte, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte{5, 1})
				up, err := net.Dial("tcp", proxyAddr)
				if err != nil {
					return
				}
				defer up.Close()
				var head [2]byte
				if _, err := io.ReadFull(c, head[:]); err != nil {
					return
				}
				methods := make([]byte, head[1])
				if _, err := io.ReadFull(c, methods); err != nil {
					return
				}
				up.Write(append(head[:], methods...))
				var reply [2]byte
				if _, err := io.ReadFull(up, reply[:]); err != nil {
					return
				}
				ch <- reply
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String(), ch
}
