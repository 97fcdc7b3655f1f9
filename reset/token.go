package reset

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
)

// TokenBytes is how many random bytes a token carries (256 bits).
const TokenBytes = 32

// TokenLen is the length of a token's text: TokenBytes in unpadded base64url.
var TokenLen = base64.RawURLEncoding.EncodedLen(TokenBytes)

// newToken reads TokenBytes from r and returns the token's bytes and text.
func newToken(r io.Reader) (raw [TokenBytes]byte, text string, err error) {
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return raw, "", fmt.Errorf("reset: reading randomness: %w", err)
	}
	return raw, base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// ParseToken checks that s has the exact form of a token this package
// issues (TokenLen characters of unpadded, canonical base64url encoding
// TokenBytes bytes) and returns its bytes. It returns an error wrapping
// ErrInvalidToken otherwise.
func ParseToken(s string) ([TokenBytes]byte, error) {
	var b [TokenBytes]byte
	if len(s) != TokenLen {
		return b, fmt.Errorf("%w: wrong length", ErrInvalidToken)
	}
	// Strict rejects non-zero padding bits, so that every token has
	// exactly one text form.
	n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s))
	if err != nil || n != TokenBytes {
		return [TokenBytes]byte{}, fmt.Errorf("%w: not base64url", ErrInvalidToken)
	}
	return b, nil
}

// hashToken returns the stored form of token bytes b.
func hashToken(key []byte, b []byte) Hash {
	if len(key) == 0 {
		return sha256.Sum256(b)
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	var h Hash
	m.Sum(h[:0])
	return h
}

// equalHash compares two hashes in constant time.
func equalHash(a, b Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }
