package reset

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// tokenBytes is how many random bytes a token carries (256 bits).
const tokenBytes = 32

// TokenLen is the length of a token's text: tokenBytes in unpadded base64url.
const TokenLen = 43 // base64.RawURLEncoding.EncodedLen(tokenBytes)

// newToken reads tokenBytes from r (crypto/rand when nil) and returns the
// token's bytes and its text form (in an array, so that the caller makes
// one string of the link instead of two).
func newToken(r io.Reader) (raw [tokenBytes]byte, text [TokenLen]byte, err error) {
	if r == nil {
		// Called directly, crypto/rand.Read lets raw stay on the stack.
		rand.Read(raw[:])
	} else {
		// An interface call would move raw to the heap: read elsewhere.
		b := make([]byte, tokenBytes)
		if _, err := io.ReadFull(r, b); err != nil {
			return raw, text, fmt.Errorf("reset: reading randomness: %w", err)
		}
		copy(raw[:], b)
	}
	base64.RawURLEncoding.Encode(text[:], raw[:])
	return raw, text, nil
}

// invitePrefix starts the text of an invitation's token; a reset token
// has no prefix.
//
// The purpose is bound into the token rather than stored beside it: the
// stored hash of an invitation's token covers the purpose (hashToken), so
// that a link whose prefix was added, removed or changed hashes to a
// record that does not exist and is refused as unknown, and no Store, no
// schema and no migration has to know about purposes. A link's query
// cannot choose the purpose: only the issuer of the token can.
const invitePrefix = "inv."

// parseToken checks that s has the exact form of a token this package
// issues (an optional purpose prefix, then TokenLen characters of
// unpadded, canonical base64url encoding tokenBytes bytes) and returns its
// bytes and the purpose the prefix names. It returns an error wrapping
// ErrInvalidToken otherwise.
func parseToken(s string) ([tokenBytes]byte, Purpose, error) {
	p := PurposeReset
	if rest, ok := strings.CutPrefix(s, invitePrefix); ok {
		s, p = rest, PurposeInvite
	}
	b, err := parseRaw(s)
	return b, p, err
}

// parseRaw parses the base64url part of a token.
func parseRaw(s string) ([tokenBytes]byte, error) {
	var b [tokenBytes]byte
	if len(s) != TokenLen {
		return b, fmt.Errorf("%w: wrong length", ErrInvalidToken)
	}
	// Strict rejects non-zero padding bits, so that every token has
	// exactly one text form.
	n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s))
	if err != nil || n != tokenBytes {
		return [tokenBytes]byte{}, fmt.Errorf("%w: not base64url", ErrInvalidToken)
	}
	return b, nil
}

// inviteDomain follows an invitation token's bytes in what is hashed, so
// that the same bytes give another hash as an invitation than as a reset
// token.
const inviteDomain = "\x00passreset/invite"

// hashToken returns the stored form of token bytes b issued for purpose
// p. A reset token's hash covers its bytes alone; an invitation's covers
// its bytes and inviteDomain.
func hashToken(key []byte, b [tokenBytes]byte, p Purpose) Hash {
	if len(key) == 0 && p != PurposeInvite {
		return sha256.Sum256(b[:])
	}
	return hmacToken(key, b, p)
}

// hmacToken is hashToken with a key or a purpose; apart, so that the
// unkeyed reset path keeps b on the stack. With no key it is plain
// SHA-256.
func hmacToken(key []byte, b [tokenBytes]byte, p Purpose) Hash {
	m := sha256.New()
	if len(key) > 0 {
		m = hmac.New(sha256.New, key)
	}
	m.Write(b[:])
	if p == PurposeInvite {
		m.Write([]byte(inviteDomain))
	}
	var h Hash
	m.Sum(h[:0])
	return h
}

// equalHash compares two hashes in constant time.
func equalHash(a, b Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }
