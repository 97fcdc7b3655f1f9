package reset

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
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

// parseToken checks that s has the exact form of a token this package
// issues (TokenLen characters of unpadded, canonical base64url encoding
// tokenBytes bytes) and returns its bytes. It returns an error wrapping
// ErrInvalidToken otherwise.
func parseToken(s string) ([tokenBytes]byte, error) {
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

// hashToken returns the stored form of token bytes b.
func hashToken(key []byte, b [tokenBytes]byte) Hash {
	if len(key) == 0 {
		return sha256.Sum256(b[:])
	}
	return hmacToken(key, b)
}

// hmacToken is hashToken with a key; apart, so that the unkeyed path keeps
// b on the stack.
func hmacToken(key []byte, b [tokenBytes]byte) Hash {
	m := hmac.New(sha256.New, key)
	m.Write(b[:])
	var h Hash
	m.Sum(h[:0])
	return h
}

// equalHash compares two hashes in constant time.
func equalHash(a, b Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }
