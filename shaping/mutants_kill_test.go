package shaping

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// Tests that kill mutants gremlins found alive in this package (see
// docs/testing.md): each pins a behaviour no other test checked.

// TestAppTotalIdleSinceItsLastRelease: an app total is idle from the release of
// its last lease, not of an earlier one, so EvictIdle keeps the bucket of an app
// that was in use until a minute ago.
func TestAppTotalIdleSinceItsLastRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(campus()) // IdleEviction 10m; skype has a total
		alice, bob := r.Acquire(Who{User: "alice"}, "skype"), r.Acquire(Who{User: "bob"}, "skype")
		alice.Release()
		time.Sleep(9 * time.Minute)
		bob.Release()
		time.Sleep(time.Minute)
		r.EvictIdle(time.Now())
		if _, ok := r.buckets[levelKey{level: levelApp, app: "skype"}]; !ok {
			t.Error("skype's total was evicted one minute after its last session ended")
		}
		time.Sleep(9 * time.Minute)
		r.EvictIdle(time.Now())
		if _, ok := r.buckets[levelKey{level: levelApp, app: "skype"}]; ok {
			t.Error("skype's total kept after IdleEviction without a session")
		}
	})
}

// TestReportWaitingOnlyWhenThrottled: the demand a bucket reports to the
// cluster says a session waited only when one did; a bucket within its burst
// is not saturated, and one that made a session wait is.
func TestReportWaitingOnlyWhenThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(oneGroup(64 * kib))
		l := r.Acquire(Who{User: "u"}, "web")
		defer l.Release()
		ctx := context.Background()
		if waited, err := l.Download().Wait(ctx, 1000); waited != 0 || err != nil {
			t.Fatalf("first 1000 bytes waited %v, %v", waited, err)
		}
		for key, d := range r.Report().Buckets {
			if d.Waiting {
				t.Errorf("%s: reports waiting after traffic within its burst", key)
			}
		}
		var waited time.Duration
		for waited == 0 {
			w, err := l.Download().Wait(ctx, l.Download().ChunkSize())
			if err != nil {
				t.Fatal(err)
			}
			waited += w
		}
		rep := r.Report()
		if len(rep.Buckets) == 0 {
			t.Fatal("no bucket reported after a throttled wait")
		}
		for key, d := range rep.Buckets {
			if !d.Waiting {
				t.Errorf("%s: does not report waiting after a wait of %v", key, waited)
			}
		}
	})
}

// oneRead returns msg from its first Read, then io.EOF: a message that is all
// the socket holds.
type oneRead struct{ msg []byte }

func (r *oneRead) Read(p []byte) (int, error) {
	if len(r.msg) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.msg)
	r.msg = r.msg[n:]
	return n, nil
}

// TestCopySparseMessagePassesDrainedBucket: a short message (up to
// SparseMessage) that is all its sender wrote passes at once through a bucket
// that bulk traffic drained, instead of queueing behind it.
func TestCopySparseMessagePassesDrainedBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(oneGroup(64 * kib))
		l := r.Acquire(Who{User: "u"}, "web")
		defer l.Release()
		c := l.Download()
		for waited := time.Duration(0); waited == 0; {
			waited, _ = c.Wait(context.Background(), c.ChunkSize()) // until the bucket is empty
		}
		var waited time.Duration
		n, err := Copy(context.Background(), io.Discard, &oneRead{msg: make([]byte, 1000)}, c,
			func(_ int, w time.Duration) { waited += w })
		if n != 1000 || err != nil {
			t.Fatalf("Copy: %d, %v", n, err)
		}
		if waited != 0 {
			t.Errorf("a 1000-byte message waited %v behind a drained bucket, want 0 (it is sparse)", waited)
		}
	})
}

// failingWriter accepts nothing.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestCopyObservesOnlyWrittenChunks: observe hears of chunks written, never of
// one the writer refused (which would count time or bytes that never passed).
func TestCopyObservesOnlyWrittenChunks(t *testing.T) {
	r := NewRegistry(oneGroup(64 * kib))
	l := r.Acquire(Who{User: "u"}, "web")
	defer l.Release()
	calls := 0
	_, err := Copy(context.Background(), failingWriter{}, strings.NewReader("hello"), l.Download(),
		func(int, time.Duration) { calls++ })
	if err == nil || calls != 0 {
		t.Errorf("Copy to a failing writer: %v, observe called %d times; want an error and no call", err, calls)
	}
}

// TestGetBufSizeClasses: a chunk size that is a power of two gets a buffer of
// exactly that size, not the next class (twice the memory per session).
func TestGetBufSizeClasses(t *testing.T) {
	for _, tc := range []struct{ n, size int }{
		{1, 4 << 10}, {4 << 10, 4 << 10}, {4<<10 + 1, 8 << 10}, {64 << 10, 64 << 10},
		{1 << 20, 1 << 20}, {4 << 20, 1 << 20},
	} {
		b, class := getBuf(tc.n)
		if len(b) != tc.size {
			t.Errorf("getBuf(%d): %d bytes, want %d", tc.n, len(b), tc.size)
		}
		putBuf(b, class)
	}
}

// TestClassifierDropsEmptyDomains: a class built by hand (not through configs
// validation) with domains that are only dots or empty keeps its other
// domains and classifies by them; the empty ones match nothing.
func TestClassifierDropsEmptyDomains(t *testing.T) {
	c := NewClassifier(configs.AppClasses{{Name: "skype", Domains: []string{"..", "", ".", "Skype.COM."}}})
	if got := c.Classify(Target{Transport: "tcp", Host: "api.skype.com", Port: 443}); got != "skype" {
		t.Errorf("api.skype.com: %q, want skype", got)
	}
	if got := c.Classify(Target{Transport: "tcp", Host: "example.org", Port: 443}); got == "skype" {
		t.Error("example.org classified as skype: an empty domain matched")
	}
}

// TestDomainsFoldEveryUpperCaseLetter: matching folds ASCII case from 'A' to
// 'Z' inclusive, in the configured domains and in the names asked for.
func TestDomainsFoldEveryUpperCaseLetter(t *testing.T) {
	c := NewClassifier(configs.AppClasses{{Name: "teams", Domains: []string{"TEAMS.MICROSOFT.COM"}}, {Name: "zoom", Domains: []string{"zoom.us"}}})
	for host, want := range map[string]string{
		"api.teams.microsoft.com": "teams", "A.TEAMS.MICROSOFT.COM": "teams", "TeAmS.Microsoft.Com": "teams",
		"ZOOM.US": "zoom", "web.Zoom.us": "zoom", "teams.microsoft.co": "",
	} {
		got := c.Classify(Target{Transport: "tcp", Host: host, Port: 443})
		if want == "" && (got == "teams" || got == "zoom") || want != "" && got != want {
			t.Errorf("%s: %q, want %q", host, got, want)
		}
	}
}

// TestShareHysteresis: a cluster share that moves by less than 2% leaves the
// bucket's limiter as it is (a reset would cost its sessions their burst); a
// larger move up or down applies.
func TestShareHysteresis(t *testing.T) {
	r := NewRegistry(oneGroup(100 * kib))
	l := r.Acquire(Who{User: "u"}, "web")
	defer l.Release()
	bk := l.chains[download].buckets[0]
	rateNow := func() float64 { return float64(bk.limiter().Limit()) }
	for _, step := range []struct {
		share, want float64
	}{
		{0.5, 50 * kib},
		{0.505, 50 * kib}, // +1%: kept
		{0.495, 50 * kib}, // -1%: kept
		{0.6, 60 * kib},   // +20%: applied
		{0.3, 30 * kib},   // -50%: applied
		{1, 100 * kib},    // all of it
	} {
		bk.setShare(step.share)
		if got := rateNow(); got < step.want*0.999 || got > step.want*1.001 {
			t.Errorf("after share %v: limit %.0f B/s, want %.0f", step.share, got, step.want)
		}
	}
}

// helloPrefix is a TLS record header declaring recordLen payload bytes, a
// ClientHello header declaring helloLen body bytes, and the shortest body
// (version, random, no session ID, one cipher suite, null compression)
// followed by an extensions length of extLen and no extension.
func helloPrefix(recordLen, helloLen, extLen int) []byte {
	b := []byte{0x16, 3, 1, byte(recordLen >> 8), byte(recordLen), typeClientHello, byte(helloLen >> 16), byte(helloLen >> 8), byte(helloLen)}
	b = append(b, 3, 3)
	b = append(b, make([]byte, 32)...)
	b = append(b, 0, 0, 2, 0x13, 0x01, 1, 0)
	return append(b, byte(extLen>>8), byte(extLen))
}

// TestClientHelloSNIBoundaries: the limits of the record and hello lengths,
// each on its exact value, get the answer that tells a caller whether to read
// more (ErrIncomplete), give up on SNI (a split hello), or give up on TLS.
func TestClientHelloSNIBoundaries(t *testing.T) {
	const body = minHelloBody + 2 // helloPrefix's body with its extensions length
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		// A record of exactly the largest payload is valid: read on.
		{"record of 2^14 bytes, hello begun", helloPrefix(maxRecordPayload, maxRecordPayload-4, maxRecordPayload-4-body), ErrIncomplete},
		{"record over 2^14 bytes", helloPrefix(maxRecordPayload+1, 100, 100-body), ErrNotClientHello},
		// A record that ends exactly where it says, holding part of a longer
		// hello: the hello is split across records.
		{"whole record, hello continues", helloPrefix(4+body, body+100, 100), errSplit},
		// Exactly a hello header whose body is too short to be a ClientHello.
		{"hello header declaring a 1-byte body", []byte{0x16, 3, 1, 0, 100, typeClientHello, 0, 0, 1}, ErrNotClientHello},
		{"hello header declaring the shortest body", []byte{0x16, 3, 1, 0, 100, typeClientHello, 0, 0, minHelloBody}, ErrIncomplete},
	} {
		sni, err := ParseClientHelloSNI(tc.b)
		if sni != "" || err != tc.want {
			t.Errorf("%s: %q, %v; want %v", tc.name, sni, err, tc.want)
		}
	}
}

// TestHostNameEmptyList: a server_name extension with an empty list (two
// length bytes of zero) names no host and is not malformed.
func TestHostNameEmptyList(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		want error
	}{
		{[]byte{0, 0}, nil},
		{[]byte{0}, ErrNotClientHello},
		{[]byte{0, 1}, ErrNotClientHello},
	} {
		if name, err := hostName(tc.data); name != "" || err != tc.want {
			t.Errorf("hostName(%x) = %q, %v; want no name, %v", tc.data, name, err, tc.want)
		}
	}
}

// TestValidHostNameLimits: 255 bytes and '~' are a host name's limits, inside.
func TestValidHostNameLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{strings.Repeat("a", 255), true}, {strings.Repeat("a", 256), false},
		{"~user.example", true}, {"\x7fexample", false}, {"!.example", true}, {" example", false},
	} {
		if got := validHostName([]byte(tc.name)); got != tc.ok {
			t.Errorf("validHostName(%.12q, %d bytes) = %v, want %v", tc.name, len(tc.name), got, tc.ok)
		}
	}
}

// TestCappedKeepsBurstAtTheCap: a quota cap equal to the group's rates lowers
// nothing, so the group's burst stays; a cap below them resets it.
func TestCappedKeepsBurstAtTheCap(t *testing.T) {
	l := configs.Limit{Upload: 64 * kib, Download: 64 * kib, Burst: 1 * mib}
	if got := capped(l, 64*kib); got.Upload != l.Upload || got.Download != l.Download || got.Burst != l.Burst {
		t.Errorf("capped at the group's own rates: %+v, want %+v unchanged", got, l)
	}
	if got := capped(l, 32*kib); got.Upload != 32*kib || got.Download != 32*kib || got.Burst != 0 {
		t.Errorf("capped below: %+v, want both rates 32 KiB/s and the default burst", got)
	}
}
