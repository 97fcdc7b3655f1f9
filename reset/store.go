package reset

import (
	"context"
	"time"
)

// Hash is the stored form of a token: SHA-256 of the token's bytes, or
// HMAC-SHA-256 when [Config.TokenKey] is set. A Store indexes records by it.
type Hash [32]byte

// Record is what a Store keeps for one issued token. It never holds the
// token itself.
type Record struct {
	Hash      Hash      // hash of the token; unique
	UserID    string    // the account the token resets
	Email     string    // the address the link was sent to
	CreatedAt time.Time // when the token was issued (UTC)
	ExpiresAt time.Time // when the token stops working (UTC)
	// Stamp is a keyed hash of the account's credential stamp
	// ([User.Stamp]) when the token was issued, or the zero Hash when the
	// application gave none. It is keyed with the token itself, so that
	// whoever reads the store cannot test a guessed stamp against it.
	Stamp Hash
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

// Pruner is an optional Store capability: removing what has expired, a
// small batch at a time. [Service.Prune] calls it until nothing is left.
type Pruner interface {
	// Prune removes up to limit token records whose ExpiresAt is not after
	// now and, if the Store implements [Cooldowner], up to limit cooldowns
	// that ended by now and, if it implements [Quota], up to limit
	// budgets whose last use is a whole window old by now. Each kind goes in statements of its own that hold
	// locks only for the rows they remove, so that requests never queue
	// behind a prune for long. It reports how many of each kind it
	// removed; a count equal to limit means there may be more.
	Prune(ctx context.Context, now time.Time, limit int) (Pruned, error)
}

// Pruned counts what a prune removed, by kind.
type Pruned struct {
	Tokens    int // expired token records
	Cooldowns int // ended cooldowns
	Quotas    int // budgets with no use left in their window ([Quota])
}

// Cooldowner is an optional Store capability: a per-address cooldown
// shared by every Service that uses the same store, so that it holds
// across app instances. Without it a Service keeps cooldowns in process
// memory.
//
// The store never sees an address: a cooldown's key is HMAC-SHA-256 of
// the normalised address under the store's own secret (CooldownSecret),
// so whoever reads the store cannot check a guessed address against it,
// and the key is the same in every instance whatever their other keys.
type Cooldowner interface {
	// Cooldown starts a cooldown for key, owned by owner, that lasts until
	// until, unless one is already running at now. It reports whether the
	// caller may proceed: true when it started one, or when the running
	// one has the same non-empty owner (the same queued request asking
	// again after its worker died or an answer was lost); false otherwise.
	// An empty owner never matches. It must be atomic: of concurrent calls
	// for one key with different owners while none runs, exactly one
	// reports true. Expired cooldowns may be pruned by the Store at will.
	Cooldown(ctx context.Context, key Hash, owner string, now, until time.Time) (bool, error)

	// CooldownSecret returns the 32-byte secret that keys this store's
	// cooldowns, created at random on the first call (concurrent first
	// calls from any instances get the same one) and the same ever after.
	CooldownSecret(ctx context.Context) ([]byte, error)
}

// Quota is an optional Store capability: a budget of reset emails per
// address over a rolling window, shared by every Service that uses the
// same store, on top of the cooldown. A Service uses it only when the
// Store implements [Cooldowner] too (its keys are made with the
// cooldown secret); otherwise it keeps budgets in process memory.
//
// Like a cooldown's, a budget's key is HMAC-SHA-256 of the normalised
// address under the store's secret, never the address.
type Quota interface {
	// Spend records one use of key's budget at now, owned by owner,
	// unless limit uses later than now-window are recorded already. It
	// reports whether the caller may proceed: true when it recorded one,
	// or when a recorded use later than now-window has the same non-empty
	// owner (the same queued request asking again; nothing more is
	// recorded then); false otherwise, recording nothing. An empty owner
	// never matches. It must be atomic: of any number of concurrent calls
	// for one key, through any number of instances, at most limit report
	// true within one window. limit is at least 1 and at most 1,000. Uses
	// at or before now-window may be forgotten at will.
	Spend(ctx context.Context, key Hash, owner string, now time.Time, window time.Duration, limit int) (bool, error)
}

// UsersByID is an optional capability of [Users]: finding an account by
// its ID. When the account has a credential stamp, [Service.Inspect] and
// [Service.Complete] look the account up again to compare it; with
// UsersByID they ask by ID, otherwise by the address the token was sent
// to (LookupEmail), refusing the token when that address no longer
// belongs to the account.
type UsersByID interface {
	// LookupID finds the account whose ID is id. It must return
	// ErrUnknownUser (possibly wrapped) when there is none.
	LookupID(ctx context.Context, id string) (User, error)
}

// User is an account as the application knows it.
type User struct {
	ID    string // stable account identifier; never empty
	Email string // the address mail goes to
	// Locale, when set, is the account's language as a BCP 47 tag such as
	// "de" or "pt-BR". It chooses the language of the emails when the
	// Service has templates for it. Optional.
	Locale string
	// Stamp, when set, is an opaque value that changes whenever the
	// account's credentials change: a hash of the password hash, an update
	// counter, the time of the last password change. A token issued under
	// one stamp is refused as invalid once the account shows another, with
	// no call from the application; only a keyed hash of it is stored.
	// Without a stamp, a token stays valid until it is used, replaced,
	// revoked ([Service.RevokeAll]) or expires. Optional.
	Stamp string
}

// Users is implemented by the application. Implementations must be safe for
// concurrent use.
type Users interface {
	// LookupEmail finds the account whose address is email. Matching rules
	// (case, Unicode normalisation) are the application's. It must return
	// ErrUnknownUser (possibly wrapped) when there is none; any other error
	// (sql.ErrNoRows included) is taken for a failing back end. Mail goes to
	// the returned User.Email, never to the typed address.
	LookupEmail(ctx context.Context, email string) (User, error)

	// SetPassword hashes password and stores it for userID. When the
	// application refuses the password itself (bcrypt's 72-byte limit, a
	// breached-password list), it returns a [*password.Error]: the person is
	// then told its Reason, and the token stays usable. Any other error is
	// taken for a failing back end. The library never stores or logs the
	// password.
	SetPassword(ctx context.Context, userID, password string) error
}

// SecondFactor is an optional capability of [Users]: the account's
// second factor (TOTP, recovery codes, a security key's one-time code,
// whatever the application has). When Users implements it,
// [Service.Complete] asks for a valid code before it changes the
// password of an account that has one, and [Service.Inspect] tells
// whether a code will be needed. Implementations must be safe for
// concurrent use.
type SecondFactor interface {
	// HasSecondFactor reports whether userID has a second factor that a
	// reset must check. An error is taken for a failing back end.
	HasSecondFactor(ctx context.Context, userID string) (bool, error)

	// VerifySecondFactor reports whether code is a valid second-factor
	// code for userID now. Refusing a code that was already used (TOTP
	// replay) is the application's. An error is taken for a failing back
	// end, not for a wrong code. The library never stores or logs the
	// code.
	VerifySecondFactor(ctx context.Context, userID, code string) (bool, error)
}

// Message is one rendered email.
type Message struct {
	// ID identifies the message. It is stable across retries and is
	// derived from neither the token nor the link.
	ID string
	// Kind is KindReset, KindInvite or KindChanged.
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
	KindInvite  = "invitation" // the email of a [PurposeInvite] link
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

// UsersFuncs adapts two ordinary functions to the Users interface. Both
// are required: [New] refuses a UsersFuncs with a nil function. It has
// no [SecondFactor]; an application with second factors implements Users
// on a type of its own.
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
