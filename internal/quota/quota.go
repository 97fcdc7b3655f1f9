// Package quota is the per-address budget's bookkeeping that the core's
// in-process budget, memstore and the SQL stores share: the uses of one
// key, their encoding in one column, and the decision to spend.
package quota

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// MaxLimit is the largest budget a store keeps: its uses fit in
// MaxLimit*EntryLen bytes (MySQL's BLOB holds 65,535).
const MaxLimit = 1000

// EntryLen is the encoded length of one use: its time in microseconds
// since the Unix epoch (8 bytes, big-endian) and its owner (16 bytes).
const EntryLen = 8 + 16

// Owner names the request a use belongs to.
type Owner [16]byte

// OwnerOf returns the owner of a use by the request named owner: derived
// from it, so that the same request asking again recognises its own use,
// or random for an empty owner, which never matches.
func OwnerOf(owner string) Owner {
	var o Owner
	if owner == "" {
		rand.Read(o[:]) // never fails
		return o
	}
	h := sha256.Sum256([]byte("passreset/quota-owner\x00" + owner))
	copy(o[:], h[:])
	return o
}

// Use is one spend of a key's budget.
type Use struct {
	At    time.Time // when, to the microsecond
	Owner Owner
}

// Spend decides one spend of a budget of limit uses per window at now by
// owner, given the key's recorded uses. Uses at or before now-window no
// longer count. It reports whether the caller may proceed (a recorded use
// in the window has the same owner, or fewer than limit are recorded) and,
// when a new use must be recorded for that, the uses to store (the
// counting ones and the new one); next is nil when nothing needs writing.
func Spend(uses []Use, owner Owner, now time.Time, window time.Duration, limit int) (next []Use, ok bool) {
	since := now.Add(-window)
	live := make([]Use, 0, len(uses)+1)
	for _, u := range uses {
		if u.At.After(since) {
			if u.Owner == owner {
				return nil, true
			}
			live = append(live, u)
		}
	}
	if len(live) >= limit {
		return nil, false
	}
	return append(live, Use{At: now.Truncate(time.Microsecond), Owner: owner}), true
}

// Last returns when the latest of uses was made, the zero time for none.
func Last(uses []Use) time.Time {
	var t time.Time
	for _, u := range uses {
		if u.At.After(t) {
			t = u.At
		}
	}
	return t
}

// Encode returns uses in the column's form.
func Encode(uses []Use) []byte {
	b := make([]byte, 0, len(uses)*EntryLen)
	for _, u := range uses {
		b = binary.BigEndian.AppendUint64(b, uint64(u.At.UnixMicro()))
		b = append(b, u.Owner[:]...)
	}
	return b
}

// Decode reads uses from the column's form.
func Decode(b []byte) ([]Use, error) {
	if len(b)%EntryLen != 0 {
		return nil, errors.New("quota: a stored budget's length is not a multiple of the entry length")
	}
	uses := make([]Use, 0, len(b)/EntryLen)
	for ; len(b) > 0; b = b[EntryLen:] {
		u := Use{At: time.UnixMicro(int64(binary.BigEndian.Uint64(b))).UTC()}
		copy(u.Owner[:], b[8:EntryLen])
		uses = append(uses, u)
	}
	return uses, nil
}

// CheckLimit reports a limit no store keeps.
func CheckLimit(limit int) error {
	if limit < 1 || limit > MaxLimit {
		return fmt.Errorf("limit %d is outside 1 to %d", limit, MaxLimit)
	}
	return nil
}
