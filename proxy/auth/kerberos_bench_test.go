package auth

import (
	"testing"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// BenchmarkAcceptSPNEGO is one Kerberos login with mutual authentication (two
// AES-256 decryptions, a replay-cache entry, the AP-REP): what a CPU core can
// take of a login storm. Tokens are made before the timer starts.
func BenchmarkAcceptSPNEGO(b *testing.B) {
	v, c := offlineKerberos(b)
	tokens := make([][]byte, b.N)
	for i := range tokens {
		tokens[i] = c.Negotiate(b, kdctest.TokenOptions{Mutual: true})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if l := v.AcceptSPNEGO(tokens[i], loopback); l.Result != KerberosOK {
			b.Fatal(l)
		}
	}
}
