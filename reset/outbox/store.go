package outbox

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseLost is what a [Store] returns when a worker writes an envelope
// whose lease it no longer holds (the lease ended and another worker
// claimed the envelope). Nothing was changed. Check it with [errors.Is].
var ErrLeaseLost = errors.New("outbox: lease lost")

// Envelope kinds.
const (
	// KindRequest is a public password-lost request still to be carried
	// out (look the address up, apply the cooldown, issue a token, render
	// the email); once carried out it holds the rendered email too.
	KindRequest = "request"
	// KindMessage is a rendered email waiting to be sent on its own.
	KindMessage = "message"
	// KindBatch is a batch of rendered emails that was (or is about to be)
	// handed to the provider in one call under one idempotency key (the
	// envelope's ID). It is claimed, retried and answered as a unit, so a
	// batch whose outcome is unknown is only ever sent again whole, under
	// the same key.
	KindBatch = "batch"
)

// Envelope is one entry of the outbox. Everything that names a person (the
// typed address, the caller's link, the rendered emails) is in Sealed,
// encrypted with AES-256-GCM under the key KeyID names; a Store keeps
// Sealed as opaque bytes. The other fields are bookkeeping.
type Envelope struct {
	ID        string    // unique: a message's ID, or a batch's idempotency key
	Kind      string    // KindRequest, KindMessage or KindBatch
	Sealed    []byte    // the sealed content; never empty
	KeyID     string    // the ID of the key that sealed it
	Attempts  int       // answered failures so far
	Claims    int       // times claimed, counted by Claim
	NotBefore time.Time // not claimed before this time (UTC); also its place in the queue
	CreatedAt time.Time // when it was queued (UTC)
	Dead      bool      // moved aside: not claimed until revived
	LastError string    // the last failure, without secrets or addresses
}

// Stats describes the outbox at one moment, for every instance together.
type Stats struct {
	Pending int       // envelopes not dead, up to the limit asked for
	Dead    int       // envelopes moved aside, up to the limit asked for
	Oldest  time.Time // CreatedAt of the oldest pending envelope; zero if none
}

// Store is a durable outbox that many workers in many processes drain at
// once, and the provider budget they share. Every method must be safe for
// concurrent use from several processes sharing the store, must honour
// ctx, and must take its times from its arguments, never from a clock of
// its own. Run the conformance suite (resettest.TestOutboxStore) on any
// implementation.
//
// A worker "holds" an envelope from the Claim that leased it to that
// worker until a Save without hold, a Replace that removes it, or another
// worker's Claim after the lease ended. A lease that ended but was not
// claimed again is still held.
type Store interface {
	// Enqueue adds e, unleased, in one statement whose cost does not grow
	// with the number of envelopes. A retry after a lost answer must not
	// add it twice.
	Enqueue(ctx context.Context, e Envelope) error

	// Claim leases to worker, until leaseUntil, up to max envelopes that
	// are not dead, are due (NotBefore not after now) and are not leased
	// (or whose lease ended by now), taking them in the order of NotBefore,
	// then CreatedAt, then ID; it adds one to their Claims and returns
	// them. It never changes NotBefore, so an envelope whose worker died
	// keeps its place in the queue. Two concurrent claims never return the
	// same envelope while its lease runs. Its cost must not grow with the
	// number of envelopes that are not due.
	Claim(ctx context.Context, worker string, now, leaseUntil time.Time, max int) ([]Envelope, error)

	// Renew extends to leaseUntil the leases worker holds on the envelopes
	// ids, and returns the ids it no longer holds.
	Renew(ctx context.Context, worker string, ids []string, leaseUntil time.Time) (lost []string, err error)

	// Save stores e's Sealed, KeyID, Attempts, NotBefore, Dead and
	// LastError if worker holds e, keeping the lease when hold is true and
	// ending it otherwise. It returns ErrLeaseLost, changing nothing, if
	// worker does not hold e.
	Save(ctx context.Context, worker string, e Envelope, hold bool) error

	// Replace removes the envelopes remove, all of which worker must hold,
	// and adds the envelopes add, in one atomic step: either all of it
	// happens or none of it does. When holdUntil is not zero the added
	// envelopes are leased to worker until holdUntil; otherwise they are
	// unleased. It returns ErrLeaseLost, changing nothing, when worker does
	// not hold one of remove. Replace(ctx, w, []string{id}, nil, zero)
	// deletes one envelope.
	//
	// The outbox forms a batch with it (the members out, the batch in,
	// held) and records a batch's answer with it (the batch out, the
	// members the provider refused back in): a batch's membership and its
	// outcome are each written at once, so no crash can leave part of a
	// batch behind.
	Replace(ctx context.Context, worker string, remove []string, add []Envelope, holdUntil time.Time) error

	// Stats counts the pending and the dead envelopes, each up to limit (a
	// count equal to limit means "limit or more"), and finds the oldest
	// pending one. Its cost must not exceed reading about limit index
	// entries, whatever the size of the outbox.
	Stats(ctx context.Context, limit int) (Stats, error)

	// Dead returns up to limit dead envelopes, oldest first.
	Dead(ctx context.Context, limit int) ([]Envelope, error)

	// Revive makes the dead envelope id pending again, due at now, with
	// Attempts and Claims reset. It returns an error matching
	// reset.ErrNotFound if no dead envelope has that id.
	Revive(ctx context.Context, id string, now time.Time) error

	// PruneDead removes up to limit dead envelopes created before before,
	// in statements that lock only the rows they remove, and reports how
	// many it removed.
	PruneDead(ctx context.Context, before time.Time, limit int) (int, error)

	// Reserve takes one call from the provider budget named key, which
	// allows interval between calls on average with bursts of burst calls,
	// at now. It returns when the call may be made: now, or a later time
	// the caller must wait for (the reservation is already taken). It must
	// be atomic across instances: of concurrent reservations each gets its
	// own slot.
	//
	// Precisely (the generic cell rate algorithm): the budget keeps one
	// time, tat, zero for a new key. Reserve sets t = max(tat, now), stores
	// tat = t + interval and returns max(now, t - (burst-1)*interval).
	// Callers may pass different intervals; each reservation adds its own.
	Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (at time.Time, err error)

	// Pause sets the budget's tat to until if it is earlier, so that no
	// reservation made afterwards is before until - (burst-1)*interval.
	Pause(ctx context.Context, key string, until time.Time) error
}
