package passhash_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/passreset/passreset/passhash"
	"golang.org/x/crypto/bcrypt"
)

// cheap keeps the tests fast under -race; the format and the code paths
// are the defaults'.
var cheap = passhash.Params{Memory: 64, Time: 1}

func mustHash(t *testing.T, p passhash.Params, pw string) string {
	t.Helper()
	h, err := p.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func verify(t *testing.T, pw, h string) bool {
	t.Helper()
	ok, err := passhash.Verify(pw, h)
	if err != nil {
		t.Fatalf("Verify(%q): %v", h, err)
	}
	return ok
}

// Long passphrases in any script are hashed whole: two that differ only
// after byte 72 (where bcrypt stops) do not match each other.
func TestLongPassphrases(t *testing.T) {
	for _, pw := range []string{
		strings.Repeat("ключ", 16),       // 64 Cyrillic characters, 128 bytes
		strings.Repeat("密码很长", 16),       // 64 Chinese characters, 192 bytes
		strings.Repeat("a", 1024),        // the policy's longest
		strings.Repeat("x", 72) + "tail", // beyond bcrypt's 72 bytes
	} {
		h := mustHash(t, cheap, pw)
		if !verify(t, pw, h) {
			t.Errorf("%d bytes: the password does not verify", len(pw))
		}
		if verify(t, pw+"!", h) || verify(t, pw[:len(pw)-1], h) {
			t.Errorf("%d bytes: a different password verifies", len(pw))
		}
	}
	if verify(t, strings.Repeat("x", 72)+"other", mustHash(t, cheap, strings.Repeat("x", 72)+"tail")) {
		t.Error("the bytes after 72 are ignored")
	}
}

// NFKC: one code point or a letter and a combining accent are the same.
func TestNormalisation(t *testing.T) {
	h := mustHash(t, cheap, "caf\u00e9 au lait, s'il vous plaît")
	if !verify(t, "cafe\u0301 au lait, s'il vous plaît", h) {
		t.Error("the decomposed form does not verify")
	}
}

// The default Params: a real argon2id hash in PHC form, not needing a
// rehash; hashes are salted.
func TestDefaults(t *testing.T) {
	h1, err := passhash.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := passhash.Hash("correct horse battery staple")
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") || h1 == h2 {
		t.Errorf("hashes %q and %q", h1, h2)
	}
	if !verify(t, "correct horse battery staple", h1) || passhash.NeedsRehash(h1) {
		t.Error("the default hash does not verify or needs a rehash")
	}
	if !passhash.NeedsRehash(mustHash(t, cheap, "x")) {
		t.Error("a hash with other costs does not need a rehash")
	}
}

// Old bcrypt hashes keep working and are due for a rehash.
func TestBcryptHashesVerify(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("old password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !verify(t, "old password", string(b)) || verify(t, "other password", string(b)) {
		t.Error("bcrypt hash verified wrongly")
	}
	if verify(t, strings.Repeat("é", 40), string(b)) {
		t.Error("a password bcrypt cannot hash matched")
	}
	if !passhash.NeedsRehash(string(b)) {
		t.Error("a bcrypt hash does not need a rehash")
	}
}

func TestMalformed(t *testing.T) {
	good := mustHash(t, cheap, "pw")
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		strings.Replace(good, "v=19", "v=18", 1),
		strings.Replace(good, "m=64", "m=99999999", 1),
		strings.Replace(good, "t=1", "t=0", 1),
		strings.Replace(good, "p=1", "p=0", 1),
		strings.Replace(good, "m=64", "m=064", 1),
		good[:len(good)-30],
		good + "$",
		"$2a$10$short",
	} {
		if ok, err := passhash.Verify("pw", h); ok || !errors.Is(err, passhash.ErrMalformed) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformed", h, ok, err)
		}
	}
}

// FuzzVerify: no stored string makes Verify panic or accept a password
// whose hash it is not.
func FuzzVerify(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$2a$04$abcdefghijklmnopqrstuuVHTJ1lAvv6xK2FiH5W.5lhGxK8eA8Wa")
	f.Fuzz(func(t *testing.T, encoded string) {
		if strings.Contains(encoded, "m=") && !strings.Contains(encoded, "m=64,") && !strings.HasPrefix(encoded, "$2") {
			return // keep the fuzzer's memory bounded: only tiny costs are tried
		}
		ok, err := passhash.Verify("fuzz", encoded)
		if ok && err != nil {
			t.Fatal("ok with an error")
		}
	})
}
