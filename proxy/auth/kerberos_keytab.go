package auth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"
)

// maxKeytabSize bounds a keytab file: a keytab holds a few dozen keys of under
// 200 bytes each; a file of megabytes is not one.
const maxKeytabSize = 1 << 20

// KeytabEntry is one key of a keytab, for listings: never the key itself.
type KeytabEntry struct {
	// Principal is service/host@REALM.
	Principal string
	// KVNO is the key's version number.
	KVNO uint32
	// Enctype names the key's encryption type (aes256-cts-hmac-sha1-96), or
	// "enctype N" for a type without a name here.
	Enctype string
}

// serviceKey is one key of a keytab, ready to decrypt tickets with.
type serviceKey struct {
	service string // service/host, compared without case
	realm   string
	kvno    uint32
	key     types.EncryptionKey
}

// keySet is a keytab as read: its keys and their listing.
type keySet struct {
	keys    []serviceKey
	entries []KeytabEntry
	stamp   fileStamp
}

// ReadKeytab reads the keytab at path and lists its keys, for `sockshaper
// check-config`. Errors name the file.
func ReadKeytab(path string) ([]KeytabEntry, error) {
	ks, err := readKeySet(path)
	if err != nil {
		return nil, err
	}
	return ks.entries, nil
}

// readKeySet reads and parses the keytab at path. Errors name the file.
func readKeySet(path string) (*keySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keytab: %w", err)
	}
	defer f.Close()
	stamp, err := stampOf(f)
	if err != nil {
		return nil, fmt.Errorf("keytab: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeytabSize+1))
	if err != nil {
		return nil, fmt.Errorf("keytab: %w", err)
	}
	if len(b) > maxKeytabSize {
		return nil, fmt.Errorf("keytab %s: larger than %d bytes, not a keytab", path, maxKeytabSize)
	}
	ks, err := parseKeySet(b)
	if err != nil {
		return nil, fmt.Errorf("keytab %s: %w", path, err)
	}
	ks.stamp = stamp
	return ks, nil
}

// parseKeySet parses a keytab's bytes (MIT format, versions 1 and 2). gokrb5's
// parser is not hardened against every malformed file, so a panic in it is an
// error here: a bad file must not take the proxy down on a reload.
func parseKeySet(b []byte) (ks *keySet, err error) {
	defer func() {
		if recover() != nil {
			ks, err = nil, errors.New("malformed keytab")
		}
	}()
	var kt keytab.Keytab
	if err := kt.Unmarshal(b); err != nil {
		return nil, err
	}
	ks = &keySet{}
	for _, e := range kt.Entries {
		p := e.Principal
		if len(p.Components) == 0 || slices.Contains(p.Components, "") || len(e.Key.KeyValue) == 0 {
			continue // not a service key
		}
		k := serviceKey{service: strings.Join(p.Components, "/"), realm: p.Realm, kvno: e.KVNO, key: e.Key}
		ks.keys = append(ks.keys, k)
		ks.entries = append(ks.entries, KeytabEntry{Principal: k.service + "@" + k.realm, KVNO: k.kvno,
			Enctype: EnctypeName(e.Key.KeyType)})
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("no keys")
	}
	return ks, nil
}

// EnctypeName names an encryption type by its MIT name, or "enctype N".
func EnctypeName(id int32) string {
	switch id {
	case etypeID.AES256_CTS_HMAC_SHA1_96:
		return "aes256-cts-hmac-sha1-96"
	case etypeID.AES128_CTS_HMAC_SHA1_96:
		return "aes128-cts-hmac-sha1-96"
	case etypeID.AES256_CTS_HMAC_SHA384_192:
		return "aes256-cts-hmac-sha384-192"
	case etypeID.AES128_CTS_HMAC_SHA256_128:
		return "aes128-cts-hmac-sha256-128"
	case etypeID.RC4_HMAC:
		return "arcfour-hmac"
	case etypeID.DES3_CBC_SHA1_KD:
		return "des3-cbc-sha1-kd"
	case etypeID.DES_CBC_CRC, etypeID.DES_CBC_MD4, etypeID.DES_CBC_MD5:
		return "des"
	}
	return fmt.Sprintf("enctype %d", id)
}

// covers returns an error unless ks holds, for each of services, a key of an
// allowed encryption type: without one, no ticket for that service can be read.
func (ks *keySet) covers(services []string, allowed []int32) error {
	var missing []string
	for _, s := range services {
		if !slices.ContainsFunc(ks.keys, func(k serviceKey) bool {
			return strings.EqualFold(k.service, s) && slices.Contains(allowed, k.key.KeyType)
		}) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	held := make([]string, len(ks.entries))
	for i, e := range ks.entries {
		held[i] = fmt.Sprintf("%s kvno %d %s", e.Principal, e.KVNO, e.Enctype)
	}
	return fmt.Errorf("no key of an accepted encryption type for %s (it holds: %s)",
		strings.Join(missing, ", "), strings.Join(held, "; "))
}

// candidates returns the keys that may decrypt a ticket for service@realm of
// encryption type etype and key version kvno: those of that version first,
// then the other versions, newest first, since a KDC (an Active Directory
// read-only DC, say) may number versions its own way. exact reports whether a
// key of that very version was among them.
func (ks *keySet) candidates(service, realm string, etype int32, kvno uint32) (keys []types.EncryptionKey, exact bool) {
	var others []serviceKey
	for _, k := range ks.keys {
		if k.key.KeyType != etype || k.realm != realm || !strings.EqualFold(k.service, service) {
			continue
		}
		if k.kvno == kvno {
			keys, exact = append(keys, k.key), true
		} else {
			others = append(others, k)
		}
	}
	slices.SortStableFunc(others, func(a, b serviceKey) int { return int(b.kvno) - int(a.kvno) })
	for _, k := range others {
		keys = append(keys, k.key)
	}
	return keys, exact
}
