// Package passhash hashes passwords for storage with argon2id
// (golang.org/x/crypto/argon2) and verifies them, so that a
// [reset.Users] SetPassword can store any password the reset policy
// accepts: argon2id hashes the whole password, where bcrypt refuses or
// truncates beyond 72 bytes (a 64-character Chinese passphrase is 192
// bytes).
//
// Before hashing, a password is normalised to Unicode NFKC, as NIST SP
// 800-63B-4 recommends, so that "é" typed as one code point or as "e" and a
// combining accent is the same password. [Verify] also accepts bcrypt
// hashes ("$2a$", "$2b$", "$2y$"), so that an application moving from
// bcrypt keeps its stored hashes working; [NeedsRehash] tells it when to
// store a fresh hash after a successful login.
//
// [reset.Users]: https://pkg.go.dev/github.com/passreset/passreset/reset#Users
package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

// ErrMalformed reports a stored hash that is neither an argon2id hash of
// this package nor a bcrypt hash. Checked with errors.Is; may be wrapped.
var ErrMalformed = errors.New("passhash: malformed hash")

// Params are the argon2id costs. The zero value of each field means its
// default, OWASP's recommended minimum for argon2id: 19 MiB of memory,
// 2 passes, 1 thread.
type Params struct {
	Memory  uint32 // KiB; default 19456
	Time    uint32 // passes over the memory; default 2
	Threads uint8  // default 1
}

const (
	defaultMemory  = 19 * 1024
	defaultTime    = 2
	defaultThreads = 1
	saltLen        = 16
	keyLen         = 32
)

// withDefaults returns p with its zero fields set to the defaults.
func (p Params) withDefaults() Params {
	if p.Memory == 0 {
		p.Memory = defaultMemory
	}
	if p.Time == 0 {
		p.Time = defaultTime
	}
	if p.Threads == 0 {
		p.Threads = defaultThreads
	}
	return p
}

// Hash returns an argon2id hash of password with the default [Params].
func Hash(password string) (string, error) { return Params{}.Hash(password) }

// Hash returns an argon2id hash of password, NFKC-normalised, with a
// random 16-byte salt, in the PHC string format
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded standard
// base64). Its only error is the system's randomness failing.
func (p Params) Hash(password string) (string, error) {
	p = p.withDefaults()
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passhash: salt: %w", err)
	}
	key := argon2.IDKey([]byte(norm.NFKC.String(password)), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, an argon2id hash from
// [Hash] or a bcrypt hash, in constant time with respect to the hash. It
// returns false and an error wrapping [ErrMalformed] for anything else.
func Verify(password, encoded string) (bool, error) {
	if strings.HasPrefix(encoded, "$2") {
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword), errors.Is(err, bcrypt.ErrPasswordTooLong):
			return false, nil
		default:
			return false, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	p, salt, key, err := parse(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(norm.NFKC.String(password)), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded should be replaced by a fresh
// [Hash] with p the next time the password is known (at a successful
// login): it is a bcrypt hash, malformed, or an argon2id hash with other
// costs.
func (p Params) NeedsRehash(encoded string) bool {
	got, _, _, err := parse(encoded)
	return err != nil || got != p.withDefaults()
}

// NeedsRehash is [Params.NeedsRehash] with the default [Params].
func NeedsRehash(encoded string) bool { return Params{}.NeedsRehash(encoded) }

// maxMemory bounds the memory a stored hash may ask for (4 GiB), so that
// a corrupt row cannot make Verify allocate without limit.
const maxMemory = 4 * 1024 * 1024

// parse reads a PHC argon2id string.
func parse(encoded string) (p Params, salt, key []byte, err error) {
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformed, why)
	}
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return bad("not an argon2id hash")
	}
	var v int
	if _, err := fmt.Sscanf(f[2], "v=%d", &v); err != nil || v != argon2.Version || f[2] != fmt.Sprintf("v=%d", v) {
		return bad("unsupported version")
	}
	var threads uint32
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil ||
		f[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, threads) {
		return bad("bad parameters")
	}
	if p.Memory < 8 || p.Memory > maxMemory || p.Time < 1 || p.Time > 100 || threads < 1 || threads > 255 || p.Memory < 8*threads {
		return bad("parameters out of range")
	}
	p.Threads = uint8(threads)
	b64 := base64.RawStdEncoding.Strict()
	if salt, err = b64.DecodeString(f[4]); err != nil || len(salt) < 8 {
		return bad("bad salt")
	}
	if key, err = b64.DecodeString(f[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return bad("bad hash")
	}
	return p, salt, key, nil
}
