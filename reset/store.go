package reset

import (
	"context"
	"time"
)

// HashSize is the size of a token hash in bytes.
const HashSize = 32

// Hash is the stored form of a token: SHA-256 of the token's bytes, or
// HMAC-SHA-256 when [Config.TokenKey] is set. A Store indexes records by it.
type Hash [HashSize]byte

// Record is what a Store keeps for one issued token. It never holds the
// token itself.
type Record struct {
	Hash      Hash      // hash of the token; unique
	UserID    string    // the account the token resets
	Email     string    // the address the link was sent to
	CreatedAt time.Time // when the token was issued (UTC)
	ExpiresAt time.Time // when the token stops working (UTC)
}

// Store keeps token records. Implementations must be safe for concurrent
// use, and every method must honour ctx. Times are passed in by the core;
// a Store never reads a clock of its own.
type Store interface {
	// Rotate stores rec as the only record of rec.UserID. Every older record
	// of that user must stop being returned by Lookup and Consume in the
	// same atomic step: of any number of concurrent Rotate calls for one
	// user, exactly one record remains afterwards.
	Rotate(ctx context.Context, rec Record) error

	// Lookup returns the record with hash h, whether or not it has expired.
	// It returns ErrNotFound (possibly wrapped) when there is none. It
	// changes nothing.
	Lookup(ctx context.Context, h Hash) (Record, error)

	// Consume atomically removes the record with hash h and returns it,
	// whether or not it has expired. Of any number of concurrent calls with
	// the same hash exactly one returns the record; the others, and every
	// later call, return ErrNotFound.
	Consume(ctx context.Context, h Hash) (Record, error)

	// RevokeAll removes every record of userID. Removing nothing is not an
	// error.
	RevokeAll(ctx context.Context, userID string) error
}

// Pruner is an optional Store capability: removing records that expired
// before now. A Service calls it from [Service.Prune]; callers run that
// periodically (a Store may also clean up on its own).
type Pruner interface {
	// Prune removes every record whose ExpiresAt is not after now and
	// returns how many it removed.
	Prune(ctx context.Context, now time.Time) (int, error)
}

// Cooldowner is an optional Store capability: a per-key cooldown shared by
// every Service that uses the same store, so that it holds across app
// instances. Without it a Service keeps cooldowns in process memory.
type Cooldowner interface {
	// Cooldown starts a cooldown for key that lasts until until, unless one
	// is already running at now. It reports whether it started one (true:
	// the caller may proceed). It must be atomic: of concurrent calls for
	// one key while none runs, exactly one reports true. Expired cooldowns
	// may be pruned by the Store at will.
	Cooldown(ctx context.Context, key Hash, now, until time.Time) (bool, error)
}

// User is an account as the application knows it.
type User struct {
	ID    string // stable account identifier; never empty
	Email string // the address mail goes to
}

// Users is implemented by the application. Implementations must be safe for
// concurrent use.
type Users interface {
	// LookupEmail finds the account whose address is email. Matching rules
	// (case, Unicode normalisation) are the application's. It returns
	// ErrUnknownUser (possibly wrapped) when there is none. Mail goes to the
	// returned User.Email, never to the typed address.
	LookupEmail(ctx context.Context, email string) (User, error)

	// SetPassword hashes password and stores it for userID. The library
	// never stores or logs the password.
	SetPassword(ctx context.Context, userID, password string) error
}

// Message is one rendered email.
type Message struct {
	// ID identifies the message. It is stable across retries and is
	// derived from neither the token nor the link.
	ID string
	// Kind is KindReset or KindChanged.
	Kind string
	// To is the single recipient address.
	To string
	// Subject, Text and HTML are the rendered content. Subject holds no CR
	// or LF.
	Subject string
	Text    string
	HTML    string
}

// Message kinds.
const (
	KindReset   = "password_reset"
	KindChanged = "password_changed"
)

// IdempotencyKey returns the key a transport sends with the message so that
// a retry (or a second process retrying the same message) sends it once: it
// has the form "<kind>/<id>" that Resend suggests.
func (m Message) IdempotencyKey() string { return m.Kind + "/" + m.ID }

// Mailer delivers messages. Implementations must be safe for concurrent use.
// Send returns only when the message has been handed to the provider, or an
// error. It should send the message's IdempotencyKey with it where the
// provider supports one.
type Mailer interface {
	Send(ctx context.Context, msg Message) error
}

// MailerFunc adapts an ordinary function to the Mailer interface.
type MailerFunc func(ctx context.Context, msg Message) error

// Send calls f(ctx, msg).
func (f MailerFunc) Send(ctx context.Context, msg Message) error { return f(ctx, msg) }

// UsersFuncs adapts two ordinary functions to the Users interface.
type UsersFuncs struct {
	Lookup func(ctx context.Context, email string) (User, error)
	Set    func(ctx context.Context, userID, password string) error
}

// LookupEmail calls u.Lookup.
func (u UsersFuncs) LookupEmail(ctx context.Context, email string) (User, error) {
	return u.Lookup(ctx, email)
}

// SetPassword calls u.Set.
func (u UsersFuncs) SetPassword(ctx context.Context, userID, password string) error {
	return u.Set(ctx, userID, password)
}
