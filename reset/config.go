package reset

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/passreset/passreset/reset/password"
)

// Defaults of the settings.
const (
	defaultTokenTTL   = time.Hour
	defaultCooldown   = time.Minute
	defaultDailyLimit = 5
	defaultQueueSize  = 1024
	defaultWorkers    = 2
	defaultAfterReset = 30 * time.Second
)

// Config configures a [Service]. The zero value of every optional field
// means the documented default. Store, Users, Mailer and ResetURL are
// required.
type Config struct {
	// Store keeps the token records. Required.
	Store Store
	// Users finds accounts and sets passwords. Required.
	Users Users
	// Mailer delivers the emails. Required.
	Mailer Mailer

	// ResetURL is the absolute URL of the hosted reset page that default
	// links point to, such as "https://app.example.com/auth/reset". The
	// token is added as its "token" query parameter. Required; its host is
	// fixed here and never taken from a request.
	ResetURL string

	// AllowedLinks lists the places a caller-supplied link may point to,
	// each an absolute URL prefix such as "https://app.example.com/reset/":
	// a link must have the same scheme and host (with port) and a path under
	// that path. https is required except for loopback hosts. Default: none,
	// so every caller-supplied link is refused. The reset link made from an
	// accepted link means the same to an application that reads it with
	// net/url, but is written so that no linkifier can end it early: every
	// character of its path and query outside RFC 3986's unreserved set,
	// "/", "=" and "&" is percent-encoded, and so is each dot of a run of
	// two or more; a "token" parameter of the link is dropped, and the
	// token is the last parameter.
	AllowedLinks []string

	// Product names the application in emails. Default: the host of ResetURL.
	Product string

	// TokenTTL is how long a reset token works, and the longest a
	// trusted caller may ask for ([TrustedRequest.Lifetime]). Default 1
	// hour.
	TokenTTL time.Duration

	// MaxInviteLifetime is the longest an invitation's link may work
	// ([PurposeInvite], [TrustedRequest.Lifetime]), and its lifetime
	// when the caller asks for none. Default 7 days.
	MaxInviteLifetime time.Duration

	// Cooldown is the shortest time between two reset emails to one address
	// for public requests (and trusted requests that ask for it); during it a
	// request sends nothing and changes nothing, and the caller cannot tell.
	// Default 1 minute; negative disables it.
	Cooldown time.Duration

	// DailyLimit is how many reset emails one address gets at most in any
	// rolling 24 hours, on top of the Cooldown, for public requests (and
	// trusted requests that ask for it). Past it a request sends nothing
	// and changes nothing, and the caller cannot tell. The budget is
	// shared by every instance through the Store when it implements
	// [Quota] and [Cooldowner], and kept in process memory otherwise.
	// Default 5; at most 1,000; negative disables it.
	DailyLimit int

	// Suppressed, when set, is asked before a reset email is sent to an
	// account's address whether that address is to get none (it bounced
	// for good, or its owner marked a reset email as spam):
	// feedback.Feedback.Suppressed answers from the provider's webhooks.
	// For a public request the answer is checked when the queue carries
	// the request out, after the public answer, so the caller cannot tell;
	// nothing is issued and nothing sent. A trusted request that would
	// send mail gets an error wrapping [ErrSuppressed] instead, before
	// anything changes. "Password changed" notices are not suppressed.
	// An error from it fails the request like a Store's. Default: nothing
	// is suppressed. It must be safe for concurrent use.
	Suppressed func(ctx context.Context, email string) (bool, error)

	// TokenKey, when set, makes stored token hashes HMAC-SHA-256 keyed with
	// it instead of plain SHA-256, so a stolen table cannot be checked
	// against guessed tokens without the key. Changing it invalidates every
	// outstanding token. Default: none.
	TokenKey []byte

	// PasswordPolicy checks a new password for the account it is for and
	// returns nil or an error, ideally a [*password.Error]. It must be
	// safe for concurrent use. Default: [password.DefaultPolicy] (length,
	// a list of common and breached passwords, context words); a custom
	// policy that wants those too calls it.
	PasswordPolicy func(ctx context.Context, c password.Check) error

	// MultiFactor declares that the application's passwords are used
	// together with a second factor, so that the default policy accepts
	// passwords of [password.MinMultiFactor] characters. Default false:
	// at least [password.Min].
	MultiFactor bool

	// BreachedPasswords, when set, is asked about every new password that
	// the policy accepts; a password it knows is refused with a
	// [*password.Error] of Code [password.Breached]. Default: none (the
	// default policy's embedded list still applies).
	BreachedPasswords password.BreachChecker

	// DisableChangedNotice turns off the "your password was changed" email.
	// Default false: the notice is sent.
	DisableChangedNotice bool

	// EndSessions ends every session of userID in the application (every
	// device signed in to the account), so that whoever was signed in
	// before the reset is signed in no longer. [Service.Complete] calls it
	// once the password is saved, unless the person chose to stay signed
	// in elsewhere ([Completion.KeepSessions]); the hosted page then
	// offers "sign out of all devices", on by default. Its ctx is
	// AfterReset's. An error is logged and reported as an
	// EventEndSessionsFailed event; the password stays changed. Required
	// unless KeepSessions is set: [New] refuses a Config with neither.
	EndSessions func(ctx context.Context, userID string) error

	// KeepSessions declares that the application keeps its sessions
	// across a reset (it has none, or ends them itself elsewhere). It is
	// the only way to leave EndSessions unset. Default false.
	KeepSessions bool

	// AfterReset runs after a password has been changed and EndSessions
	// has run, for anything else the application does then. Its ctx carries the values of the
	// request's context but not its cancellation, and ends after
	// AfterResetTimeout: a client that goes away does not cut it short. An
	// error is logged and reported as an EventAfterResetFailed event; the
	// password stays changed. Default: none.
	AfterReset func(ctx context.Context, userID string) error

	// EmailVerified, when set, is told that the person who completed a
	// reset or an invitation proved control of email, the address the
	// link was sent to, so that the application can mark it verified
	// (if the account still has it). [Service.Complete] calls it once
	// the password is saved, before EndSessions, for both purposes, with
	// AfterReset's ctx. An error is logged and reported as an
	// EventAfterResetFailed event; the password stays changed. Default:
	// none.
	EmailVerified func(ctx context.Context, userID, email string) error

	// AfterResetTimeout bounds everything [Service.Complete] does once the
	// password is saved: revoking the user's other tokens, AfterReset and
	// queueing the "password changed" notice. Default 30 seconds.
	AfterResetTimeout time.Duration

	// Templates replaces the email templates. Default: built-in templates.
	Templates *Templates

	// Queue carries out the emails in the background: it decides when
	// each is sent, paces the calls to the provider and retries failures.
	// Default nil: the in-process queue, which keeps its work in memory
	// (lost if the process dies), paces the Mailer's calls at nine tenths
	// of a [RateLimitedMailer]'s rate and tries each email up to 4 times.
	// For mail that survives a crash and a queue that many instances drain
	// together, set a durable queue: package outbox has one.
	Queue Queue

	// QueueSize bounds the in-process queue. When it is full, a trusted
	// request that would send mail fails with ErrQueueFull and changes
	// nothing, and a public request is dropped (counted, logged and
	// reported as EventDropped) while the caller gets the same answer as
	// ever: a public answer never depends on work whose cost depends on the
	// address. "Password changed" notices have room of their own and are
	// never dropped. Default 1024; unused with Queue set.
	QueueSize int
	// Workers is how many goroutines the in-process queue runs. Default 2;
	// unused with Queue set.
	Workers int

	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Rand is the source of token randomness. Default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives the service's logs. It never receives a token, a link
	// or a whole email address. Default slog.Default().
	Logger *slog.Logger
	// Trace carries the caller's trace context through the Queue: the
	// trace context of the ctx passed to Request, RequestTrusted and
	// Complete reaches the ctx of the Mailer call that sends their email.
	// Default: none. telemetry.Propagation returns one for OpenTelemetry.
	Trace Propagation

	// OnEvent, when set, is called for every [Event], synchronously; it
	// must be safe for concurrent use and should return quickly.
	OnEvent func(Event)
}

// EventKind says what happened.
type EventKind string

// Event kinds.
const (
	EventRequested          EventKind = "requested"            // a token was issued
	EventUnknown            EventKind = "unknown"              // a request named no account
	EventThrottled          EventKind = "throttled"            // the cooldown suppressed a mail
	EventSent               EventKind = "sent"                 // the Mailer accepted a message
	EventSendFailed         EventKind = "send_failed"          // the Mailer failed
	EventCompleted          EventKind = "completed"            // a password was changed
	EventInvalid            EventKind = "invalid"              // a token was unknown, used or replaced
	EventExpired            EventKind = "expired"              // a token had expired
	EventRevoked            EventKind = "revoked"              // RevokeAll ran
	EventAfterResetFailed   EventKind = "after_reset_failed"   // Config.AfterReset failed
	EventEndSessionsFailed  EventKind = "end_sessions_failed"  // Config.EndSessions failed
	EventSecondFactorFailed EventKind = "second_factor_failed" // a wrong second-factor code was given
	EventFailed             EventKind = "failed"               // a back end failed during background work
	EventRetry              EventKind = "retry"                // a delivery failed and will be retried
	EventDead               EventKind = "dead"                 // a durable queue moved work aside
	EventDropped            EventKind = "dropped"              // a public request found the queue full
	EventBudgetWait         EventKind = "budget_wait"          // a call waited Event.Wait for the provider budget
)

// Event describes one thing the service did, for audit logs and metrics.
// It carries no token, link or email address.
type Event struct {
	Kind      EventKind
	Time      time.Time
	UserID    string // empty when unknown
	MessageID string // the email's ID (or the queued work's), when there is one
	MailKind  string // KindReset, KindInvite or KindChanged, with MessageID
	Err       error  // for failures
	// Wait is how long a call waited for the provider budget (the pace
	// below the provider's rate, or a rate-limit pause), with
	// EventBudgetWait.
	Wait time.Duration
}
