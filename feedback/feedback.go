package feedback

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// ErrReplayed is returned by [Store.RecordEvent] and [Feedback.Record] for
// an event whose ID is stored already: a replayed webhook, which changes
// nothing. Checked with errors.Is; may be wrapped.
var ErrReplayed = errors.New("feedback: event already recorded")

// ErrInvalidEvent is returned by [Feedback.Record] for an event it
// refuses before the Store sees it (an ID, type, bounce kind, time or
// field length out of bounds). Checked with errors.Is; may be wrapped.
var ErrInvalidEvent = errors.New("feedback: invalid event")

// MaxEvents is the most events [Feedback.Last] returns.
const MaxEvents = 100

// Type says what the provider reports about one email.
type Type string

// The events a provider reports.
const (
	Sent       Type = "sent"       // the provider accepted the email and will try to deliver it
	Delivered  Type = "delivered"  // the recipient's mail server took it
	Delayed    Type = "delayed"    // delivery failed for now; the provider tries again
	Bounced    Type = "bounced"    // the recipient's mail server refused it: see [Event.Bounce]
	Complained Type = "complained" // the recipient marked it as spam
)

// valid reports whether t is one of the Types above.
func (t Type) valid() bool {
	switch t {
	case Sent, Delivered, Delayed, Bounced, Complained:
		return true
	}
	return false
}

// Bounce is the kind of a bounce.
type Bounce string

// The kinds of bounce.
const (
	Hard Bounce = "hard" // permanent: the address does not take mail (Resend's "Permanent")
	Soft Bounce = "soft" // temporary or undetermined: a later email may arrive
)

// Address is the keyed hash that stands for an email address in a
// [Store]: HMAC-SHA-256 of the normalised address under [Options.Key].
type Address [32]byte

// Event is one thing the provider reported about one email to one
// address.
type Event struct {
	// ID identifies the report: the webhook's delivery ID (Svix's
	// svix-id), the same when the provider sends it again. At most 255
	// bytes.
	ID   string
	Type Type
	// Bounce is Hard or Soft for a Bounced event, and empty otherwise.
	Bounce Bounce
	// Detail is the provider's short reason, such as Resend's bounce
	// subType ("NoEmail", "MailboxFull"); at most 64 bytes, no address.
	Detail string
	// Time is when the provider says it happened, in UTC, to the
	// microsecond.
	Time time.Time
	// Received is when [Feedback.Record] stored it, in UTC, to the
	// microsecond.
	Received time.Time
	// Address is the recipient's keyed hash.
	Address Address
	// MessageID is the ID of passreset's message (reset.Message.ID), as
	// the mailer tagged the email; empty when the email carried no tag. At
	// most 64 bytes.
	MessageID string
	// ProviderID is the provider's ID of the email. At most 255 bytes.
	ProviderID string
}

// Suppresses reports whether e stops reset emails to its address: a hard
// bounce or a complaint.
func (e Event) Suppresses() bool {
	return e.Type == Complained || e.Type == Bounced && e.Bounce == Hard
}

// Store keeps the events and the suppressions. Implementations must be
// safe for concurrent use; every method that changes something does it in
// one atomic step. memstore, mysqlstore and pgstore implement it, and
// package feedbacktest holds the tests every Store must pass.
type Store interface {
	// RecordEvent stores e and, when e.Suppresses(), suppresses
	// e.Address as of e.Time, in one atomic step. When an event with
	// e.ID is stored already it changes nothing and returns an error
	// wrapping ErrReplayed; of concurrent calls with one ID exactly one
	// succeeds.
	RecordEvent(ctx context.Context, e Event) error

	// Events returns the last n (n >= 1) events of a, newest first: by
	// Time, then Received, then ID, descending. None is an empty slice
	// and no error.
	Events(ctx context.Context, a Address, n int) ([]Event, error)

	// Suppressed reports whether a suppressing event of a has a Time
	// after a's last Unsuppress (or a has one and was never
	// unsuppressed). PruneEvents does not change the answer.
	Suppressed(ctx context.Context, a Address) (bool, error)

	// Unsuppress lifts a's suppression as of at: events with a Time at
	// or before at no longer suppress a; later ones still do. An earlier
	// at than a previous call's changes nothing. For an address with no
	// event it may store at or do nothing.
	Unsuppress(ctx context.Context, a Address, at time.Time) error

	// PruneEvents deletes the events Received before before and returns
	// how many. Suppressions stay.
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
}

// Options configures a [Feedback]. Store and Key are required; a zero Now
// means time.Now.
type Options struct {
	// Store keeps the events and suppressions. Required.
	Store Store
	// Key keys the address hashes: at least 32 random bytes, the same
	// for every instance, kept out of the database. Changing it forgets
	// every suppression and event. Required.
	Key []byte
	// Now is the clock that stamps Received and Clear. Default time.Now.
	Now func() time.Time
}

// Feedback records delivery events and answers from them. Create one with
// [New]. It is safe for concurrent use.
type Feedback struct {
	store Store
	key   []byte
	now   func() time.Time
}

// New returns a Feedback configured by opts, or an error that names every
// missing or invalid field.
func New(opts Options) (*Feedback, error) {
	var problems []string
	if opts.Store == nil {
		problems = append(problems, "Store is required")
	}
	if len(opts.Key) < 32 {
		problems = append(problems, fmt.Sprintf("Key must hold at least 32 bytes, not %d", len(opts.Key)))
	}
	if len(problems) > 0 {
		return nil, errors.New("feedback: invalid options: " + strings.Join(problems, "; "))
	}
	f := &Feedback{store: opts.Store, key: append([]byte(nil), opts.Key...), now: opts.Now}
	if f.now == nil {
		f.now = time.Now
	}
	return f, nil
}

// Address returns the keyed hash of email: HMAC-SHA-256 under the key of
// the address lower-cased, without white space around it, and without a
// display name ("Ann <Ann@Example.com>" is "ann@example.com").
func (f *Feedback) Address(email string) Address {
	s := strings.TrimSpace(email)
	if a, err := mail.ParseAddress(s); err == nil {
		s = a.Address
	}
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte("passreset/feedback\x00" + strings.ToLower(s)))
	var a Address
	m.Sum(a[:0])
	return a
}

// Record stores e, reported for the recipient email: it sets e.Address
// and e.Received, and rounds the times to the microsecond in UTC. It
// returns an error wrapping [ErrReplayed] when an event with e.ID is
// stored already (nothing changes), one wrapping [ErrInvalidEvent] that
// says what is wrong with e, or the Store's error.
func (f *Feedback) Record(ctx context.Context, email string, e Event) error {
	if err := check(e); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, err)
	}
	e.Address = f.Address(email)
	e.Time = micro(e.Time)
	e.Received = micro(f.now())
	if err := f.store.RecordEvent(ctx, e); err != nil {
		return fmt.Errorf("feedback: record: %w", err)
	}
	return nil
}

// check rejects an event a Store need not take.
func check(e Event) error {
	switch {
	case e.ID == "" || len(e.ID) > 255:
		return errors.New("the ID must hold 1 to 255 bytes")
	case !e.Type.valid():
		return fmt.Errorf("unknown type %q", e.Type)
	case e.Type == Bounced && e.Bounce != Hard && e.Bounce != Soft:
		return errors.New("a bounce must be hard or soft")
	case e.Type != Bounced && e.Bounce != "":
		return errors.New("only a bounce has a bounce kind")
	case len(e.Detail) > 64 || strings.Contains(e.Detail, "@"):
		return errors.New("the detail must be at most 64 bytes, with no address")
	case e.Time.Year() < 2000 || e.Time.Year() > 9999:
		return errors.New("the time is missing or outside the years 2000 to 9999")
	case len(e.MessageID) > 64:
		return errors.New("the message ID is longer than 64 bytes")
	case len(e.ProviderID) > 255:
		return errors.New("the provider ID is longer than 255 bytes")
	}
	return nil
}

// micro returns t in UTC, truncated to the microsecond as the SQL stores
// keep it.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Suppressed reports whether reset emails to email are suppressed: a hard
// bounce or a complaint was recorded for it after the last [Feedback.Clear].
// It has the signature of reset.Config.Suppressed.
func (f *Feedback) Suppressed(ctx context.Context, email string) (bool, error) {
	ok, err := f.store.Suppressed(ctx, f.Address(email))
	if err != nil {
		return false, fmt.Errorf("feedback: suppressed: %w", err)
	}
	return ok, nil
}

// Clear lifts the suppression of email as of now: the events recorded so
// far no longer suppress it, and a later hard bounce or complaint does
// again. The events stay, for [Feedback.Last].
func (f *Feedback) Clear(ctx context.Context, email string) error {
	if err := f.store.Unsuppress(ctx, f.Address(email), micro(f.now())); err != nil {
		return fmt.Errorf("feedback: clear: %w", err)
	}
	return nil
}

// Last returns the last n events recorded for email (at most
// [MaxEvents]; n < 1 means 10), newest first: what happened to the last
// reset emails of the person who owns the address. The events hold the
// address's keyed hash, not the address.
func (f *Feedback) Last(ctx context.Context, email string, n int) ([]Event, error) {
	switch {
	case n < 1:
		n = 10
	case n > MaxEvents:
		n = MaxEvents
	}
	evs, err := f.store.Events(ctx, f.Address(email), n)
	if err != nil {
		return nil, fmt.Errorf("feedback: last: %w", err)
	}
	return evs, nil
}

// Prune deletes the events received before before and returns how many;
// suppressions stay. Keep events for at least the provider's replay window
// (resendmailer.WebhookTolerance for Resend), since a stored event's ID is
// what refuses its replay, and for as long as support may ask about them.
func (f *Feedback) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := f.store.PruneEvents(ctx, micro(before))
	if err != nil {
		return n, fmt.Errorf("feedback: prune: %w", err)
	}
	return n, nil
}
