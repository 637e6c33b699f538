package auth

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestNegotiateToken(t *testing.T) {
	big := base64.StdEncoding.EncodeToString(make([]byte, MaxKerberosToken+1))
	for _, tc := range []struct {
		value string
		want  []byte
	}{
		{"Negotiate YIIB", []byte{0x60, 0x82, 0x01}},
		{"negotiate   YIIB  ", []byte{0x60, 0x82, 0x01}},
		{"Negotiate", nil},
		{"Negotiate ", nil},
		{"Basic YWxpY2U6cHc=", nil},
		{"Negotiate not*base64", nil},
		{"Negotiate " + big, nil},
		{"", nil},
	} {
		got, ok := NegotiateToken(tc.value)
		if ok != (tc.want != nil) || !bytes.Equal(got, tc.want) {
			t.Errorf("NegotiateToken(%.40q) = %x, %v; want %x", tc.value, got, ok, tc.want)
		}
	}
	if got := NegotiateChallenge([]byte{1, 2}); got != "Negotiate AQI=" || NegotiateChallenge(nil) != "Negotiate" {
		t.Errorf("NegotiateChallenge: %q", got)
	}
}

// FuzzNegotiateToken: a header value gives a bounded token that re-encodes to
// what followed the scheme, or nothing.
func FuzzNegotiateToken(f *testing.F) {
	f.Add("Negotiate YIIB")
	f.Add("Negotiate " + strings.Repeat("A", 100))
	f.Add("NEGOTIATE =")
	f.Fuzz(func(t *testing.T, value string) {
		token, ok := NegotiateToken(value)
		if !ok {
			if token != nil {
				t.Fatal("a token without ok")
			}
			return
		}
		_, b64, _ := strings.Cut(strings.TrimSpace(value), " ")
		if len(token) == 0 || len(token) > MaxKerberosToken || base64.StdEncoding.EncodeToString(token) != strings.TrimSpace(b64) {
			t.Fatalf("%q gave %x", value, token)
		}
	})
}
