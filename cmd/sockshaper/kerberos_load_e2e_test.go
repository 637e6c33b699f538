package main

import (
	"crypto/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestKerberosLoginsUnderAttack: a lab behind one address logs in at once, 120
// Negotiate logins of alice and bob on their own connections, while a client at
// the same address sends 600 replayed and random tokens. Every real login gets
// its page, none waits long; every forged one gets a 407 with its reason; and
// the forgeries do not count against the address's password allowance.
func TestKerberosLoginsUnderAttack(t *testing.T) {
	p := startKrbProxy(t)
	// Over its allowance the address gets no turns: a password login then
	// shows whether the forgeries counted against it.
	d := startDaemonAt(t, p.dir, nil, krbConfigAuth("  throttle: {over_allowance_interval: 0s}\n", ""), users("alice", "carol"))
	web := helloServer(t)
	tickets := []kdctest.Ticket{p.k.ServiceTicket("alice@"+kdctest.Realm, proxyHTTPService),
		p.k.ServiceTicket("bob@"+kdctest.Realm, proxyHTTPService)}
	get := "GET " + web.URL + "/lab HTTP/1.1\r\nHost: " + strings.TrimPrefix(web.URL, "http://") + "\r\n"
	const logins, forgeries = 120, 600
	tokens := make([][]byte, logins)
	for i := range tokens {
		tokens[i] = tickets[i%2].Negotiate(t, kdctest.TokenOptions{})
	}
	replayed := tokens[0]

	var wg sync.WaitGroup
	var mu sync.Mutex
	var slow []time.Duration
	bad := 0
	login := func(i int) {
		start := time.Now()
		c, br := dialProxy(t, d.listen)
		resp := rawRequest(t, c, br, get+"Proxy-Authorization: "+negotiateHeader(tokens[i])+"\r\n\r\n")
		body := readBody(resp)
		mu.Lock()
		defer mu.Unlock()
		slow = append(slow, time.Since(start))
		if resp.StatusCode != 200 || body != "hello from /lab" {
			bad++
		}
	}
	login(0) // the token the forger replays is used first
	for i := 1; i < logins; i++ {
		wg.Go(func() { login(i) })
	}
	// The forger keeps 20 connections busy (within the address's handshake
	// budget, which is not what this test is about).
	next := make(chan int)
	go func() {
		for i := range forgeries {
			next <- i
		}
		close(next)
	}()
	var forged sync.Map
	for range 20 {
		wg.Go(func() {
			for i := range next {
				forge(t, d.listen, get, replayed, i, &forged, &mu)
			}
		})
	}
	wg.Wait()
	slices.Sort(slow)
	t.Logf("%d logins beside %d forgeries: median %v, slowest %v", logins, forgeries, slow[len(slow)/2], slow[len(slow)-1])
	if bad > 0 {
		t.Errorf("%d of %d real logins did not get their page", bad, logins)
	}
	if slow[len(slow)-1] > 10*time.Second {
		t.Errorf("the slowest real login took %v", slow[len(slow)-1])
	}
	forged.Range(func(status, n any) bool {
		if status != 407 {
			t.Errorf("%d forged tokens answered %v; want 407", *n.(*int), status)
		}
		return true
	})
	ok := d.metric(`sockshaper_auth_attempts_total{result="kerberos_ok"}`)
	replays := d.metric(`sockshaper_auth_attempts_total{result="kerberos_replay"}`)
	// Random bytes are malformed or, now and then, decode far enough to name
	// a mechanism other than Kerberos.
	malformed := d.metric(`sockshaper_auth_attempts_total{result="kerberos_malformed"}`) +
		d.metric(`sockshaper_auth_attempts_total{result="kerberos_mechanism"}`)
	if ok != logins || replays != forgeries/2 || malformed != forgeries/2 {
		t.Errorf("kerberos_ok %v, kerberos_replay %v, kerberos_malformed and _mechanism %v; want %d, %d, %d", ok, replays,
			malformed, logins, forgeries/2, forgeries/2)
	}
	// carol, not alice: a ticket login made alice a verified user of the
	// address, whom its allowance does not hold back.
	if status := socksLogin(t, d.listen, "carol", password); status != 0 {
		t.Errorf("a password login from the address after %d forged tickets: status %d", forgeries, status)
	}
}

// forge sends forgery i: the replayed token, or random bytes, and counts the
// status it gets in forged.
func forge(t *testing.T, addr, get string, replayed []byte, i int, forged *sync.Map, mu *sync.Mutex) {
	token := replayed
	if i%2 == 1 {
		token = make([]byte, 200)
		rand.Read(token)
	}
	c, br := dialProxy(t, addr)
	resp := rawRequest(t, c, br, get+"Proxy-Authorization: "+negotiateHeader(token)+"\r\n\r\n")
	readBody(resp)
	c.Close()
	n, _ := forged.LoadOrStore(resp.StatusCode, new(int))
	mu.Lock()
	*n.(*int)++
	mu.Unlock()
}
