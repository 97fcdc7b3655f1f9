// Package sqlstore is the skeleton that mysqlstore and pgstore share: what
// fits their outbox columns, the atomic outbox Replace with its recovery
// after a lost answer, and the small helpers of the same shape. The SQL
// text and the classification of errors stay in each store.
package sqlstore

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/passreset/passreset/reset/outbox"
)

// Limits of the outbox's columns, the same in both stores. A store refuses
// an envelope that does not fit; LastError is cut to fit instead.
const (
	MaxEnvelopeIDLen = 64        // bytes
	MaxKindLen       = 32        // bytes
	MaxKeyIDLen      = 64        // bytes
	MaxWorkerLen     = 255       // bytes
	MaxSealedLen     = 1<<24 - 1 // bytes: MySQL's MEDIUMBLOB; a batch of 100 emails takes about 2 MiB
	MaxLastErrorLen  = 1000      // characters
)

// CheckText reports s when it is not valid UTF-8 without NUL bytes, or
// longer than maxBytes bytes (when maxBytes > 0) or maxRunes characters
// (when maxRunes > 0).
func CheckText(field, s string, maxBytes, maxRunes int) error {
	switch {
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s is not valid UTF-8 without NUL bytes", field)
	case maxBytes > 0 && len(s) > maxBytes:
		return fmt.Errorf("%s is longer than %d bytes", field, maxBytes)
	case maxRunes > 0 && utf8.RuneCountInString(s) > maxRunes:
		return fmt.Errorf("%s is longer than %d characters", field, maxRunes)
	}
	return nil
}

// CheckID reports an ID or worker name that no stored row can have.
func CheckID(field, id string, maxLen int) error {
	if id == "" {
		return fmt.Errorf("empty %s", field)
	}
	return CheckText(field, id, maxLen, 0)
}

// CheckEnvelope reports an envelope whose fields do not fit the columns.
func CheckEnvelope(e outbox.Envelope) error {
	if err := CheckID("envelope ID", e.ID, MaxEnvelopeIDLen); err != nil {
		return err
	}
	if err := CheckText("envelope kind", e.Kind, MaxKindLen, 0); err != nil {
		return err
	}
	return CheckContent(e)
}

// CheckContent reports sealed content that does not fit the columns.
func CheckContent(e outbox.Envelope) error {
	if err := CheckText("key ID", e.KeyID, MaxKeyIDLen, 0); err != nil {
		return err
	}
	switch {
	case len(e.Sealed) == 0:
		return errors.New("the envelope's Sealed content is empty")
	case len(e.Sealed) > MaxSealedLen:
		return fmt.Errorf("sealed content longer than %d bytes", MaxSealedLen)
	}
	return nil
}

// Held reports whether worker and every id can name a lease at all; when
// not, no such lease can exist and the caller reports
// [outbox.ErrLeaseLost] without asking the database.
func Held(worker string, ids ...string) bool {
	if CheckID("worker name", worker, MaxWorkerLen) != nil {
		return false
	}
	for _, id := range ids {
		if CheckID("envelope ID", id, MaxEnvelopeIDLen) != nil {
			return false
		}
	}
	return true
}

// LastError makes s fit the last_error column: valid UTF-8 without NUL
// bytes, of at most MaxLastErrorLen characters.
func LastError(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if utf8.RuneCountInString(s) > MaxLastErrorLen {
		r := []rune(s)
		s = string(r[:MaxLastErrorLen-1]) + "…"
	}
	return s
}

// Nonce returns a random value that identifies one write, so that its
// retry after a lost answer can recognise the row it wrote.
func Nonce() []byte { return random(16) }

// OwnerNonce returns the nonce a cooldown of owner writes: derived from
// owner when there is one, so that the same queued request asking again
// finds its own running cooldown; random otherwise.
func OwnerNonce(owner string) []byte {
	if owner == "" {
		return Nonce()
	}
	h := sha256.Sum256([]byte("passreset/cooldown-owner\x00" + owner))
	return h[:16]
}

// Secret returns a new random 32-byte secret.
func Secret() []byte { return random(32) }

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails
	return b
}

// Placeholders returns "(?, ?, ...)" with n placeholders.
func Placeholders(n int) string {
	return "(" + strings.Repeat("?, ", max(n, 1)-1) + "?)"
}

// Unique returns ids sorted, without repeats: the order in which a
// statement locks rows, the same in every worker.
func Unique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
