package main

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
)

// scripted is a fake SOCKS5 server: it expects each of want in turn from the
// client and answers the matching reply.
func scripted(t *testing.T, conn net.Conn, want, replies [][]byte) {
	t.Helper()
	defer conn.Close()
	for i, w := range want {
		got := make([]byte, len(w))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Errorf("message %d: %v", i, err)
			return
		}
		if !bytes.Equal(got, w) {
			t.Errorf("message %d: got % x, want % x", i, got, w)
			return
		}
		if _, err := conn.Write(replies[i]); err != nil {
			t.Errorf("reply %d: %v", i, err)
			return
		}
	}
}

func TestHandshakeWithPassword(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	target := netip.MustParseAddrPort("127.0.0.1:8080")
	want := [][]byte{
		{5, 1, 2},
		append(append([]byte{1, 5}, "alice"...), append([]byte{2}, "pw"...)...),
		{5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90},
	}
	replies := [][]byte{{5, 2}, {1, 0}, {5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80}}
	done := make(chan struct{})
	go func() { scripted(t, server, want, replies); close(done) }()
	if err := handshake(client, credential{"alice", "pw"}, target); err != nil {
		t.Errorf("handshake: %v", err)
	}
	<-done
}

func TestHandshakeErrors(t *testing.T) {
	target := netip.MustParseAddrPort("[::1]:80")
	connect6 := []byte{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80}
	cases := []struct {
		name     string
		cred     credential
		want     [][]byte
		replies  [][]byte
		wantStep string
	}{
		{"no acceptable method", credential{}, [][]byte{{5, 1, 0}}, [][]byte{{5, 0xff}}, "greeting"},
		{"auth rejected", credential{"a", "b"}, [][]byte{{5, 1, 2}, {1, 1, 'a', 1, 'b'}},
			[][]byte{{5, 2}, {1, 1}}, "auth"},
		{"connect refused", credential{}, [][]byte{{5, 1, 0}, connect6},
			[][]byte{{5, 0}, {5, 2, 0, 1, 0, 0, 0, 0, 0, 0}}, "connect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			done := make(chan struct{})
			go func() { scripted(t, server, c.want, c.replies); close(done) }()
			err := handshake(client, c.cred, target)
			if got := errStep(err); got != c.wantStep {
				t.Errorf("error %v: step %q, want %q", err, got, c.wantStep)
			}
			client.Close()
			<-done
		})
	}
}

func TestDialerVia(t *testing.T) {
	o := &options{proxy: "127.0.0.1:1080"}
	if got := newDialer(o).via(); got != "127.0.0.1:1080" {
		t.Errorf("via = %q", got)
	}
	o.direct = true
	if got := newDialer(o).via(); got != "direct" {
		t.Errorf("direct via = %q", got)
	}
}
