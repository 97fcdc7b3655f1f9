package reset

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// Defaults for the zero values of [Config].
const (
	DefaultTokenTTL    = time.Hour
	DefaultCooldown    = time.Minute
	DefaultQueueSize   = 1024
	DefaultWorkers     = 2
	DefaultSendTimeout = 30 * time.Second
	DefaultAfterReset  = 30 * time.Second
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
	// so every caller-supplied link is refused.
	AllowedLinks []string

	// Product names the application in emails. Default: the host of ResetURL.
	Product string

	// TokenTTL is how long a token works. Default 1 hour.
	TokenTTL time.Duration

	// Cooldown is the shortest time between two reset emails to one address
	// for public requests (and trusted requests that ask for it); during it a
	// request sends nothing and changes nothing, and the caller cannot tell.
	// Default 1 minute; negative disables it.
	Cooldown time.Duration

	// TokenKey, when set, makes stored token hashes HMAC-SHA-256 keyed with
	// it instead of plain SHA-256, so a stolen table cannot be checked
	// against guessed tokens without the key. Changing it invalidates every
	// outstanding token. Default: none.
	TokenKey []byte

	// PasswordPolicy checks a new password and returns nil or an error,
	// ideally a [*PasswordError]. Default: [DefaultPasswordPolicy].
	PasswordPolicy func(password string) error

	// DisableChangedNotice turns off the "your password was changed" email.
	// Default false: the notice is sent.
	DisableChangedNotice bool

	// AfterReset runs after a password has been changed, for example to
	// end the user's other sessions. Its ctx carries the values of the
	// request's context but not its cancellation, and ends after
	// AfterResetTimeout: a client that goes away does not cut it short. An
	// error is logged and reported as an EventAfterResetFailed event; the
	// password stays changed. Default: none.
	AfterReset func(ctx context.Context, userID string) error

	// AfterResetTimeout bounds everything [Service.Complete] does once the
	// password is saved: revoking the user's other tokens, AfterReset and
	// queueing the "password changed" notice. Default 30 seconds.
	AfterResetTimeout time.Duration

	// Templates replaces the email templates. Default: built-in templates.
	Templates *Templates

	// Outbox, when set, replaces the in-process delivery queue with the
	// Store's durable outbox (the Store must implement [OutboxStore]):
	// queued mail survives a crash, many processes drain it together, and
	// a public request does the same single write whether or not the
	// address has an account. Workers run only inside [Service.RunOutbox]
	// or [Service.DrainOutbox]. Default nil: the in-process queue.
	Outbox *OutboxOptions

	// QueueSize bounds the in-process delivery queue. When it is full, a
	// trusted request that would send mail fails with ErrQueueFull and
	// changes nothing, and a public request is dropped (counted, logged and
	// reported as EventDropped) while the caller gets the same answer as
	// ever: a public answer never depends on work whose cost depends on the
	// address. "Password changed" notices have room of their own and are
	// never dropped. Default 1024.
	QueueSize int
	// Workers is how many goroutines deliver queued work. Default 2.
	Workers int
	// SendTimeout bounds one call of the Mailer (one message, or one batch
	// of the durable outbox). A Mailer's own timeout (such as resendmailer's
	// HTTP timeout) should be shorter, so that its error says what
	// happened. With the outbox, a call that times out is an unknown
	// outcome, retried with the same idempotency key (see
	// [OutboxOptions.MaxAttempts]). Default 30 seconds.
	SendTimeout time.Duration

	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Rand is the source of token randomness. Default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives the service's logs. It never receives a token, a link
	// or a whole email address. Default slog.Default().
	Logger *slog.Logger
	// OnEvent, when set, is called for every [Event], synchronously; it
	// must be safe for concurrent use and should return quickly.
	OnEvent func(Event)
}

// EventKind says what happened.
type EventKind string

// Event kinds.
const (
	EventRequested        EventKind = "requested"          // a token was issued
	EventUnknown          EventKind = "unknown"            // a request named no account
	EventThrottled        EventKind = "throttled"          // the cooldown suppressed a mail
	EventSent             EventKind = "sent"               // the Mailer accepted a message
	EventSendFailed       EventKind = "send_failed"        // the Mailer failed
	EventCompleted        EventKind = "completed"          // a password was changed
	EventInvalid          EventKind = "invalid"            // a token was unknown, used or replaced
	EventExpired          EventKind = "expired"            // a token had expired
	EventRevoked          EventKind = "revoked"            // RevokeAll ran
	EventAfterResetFailed EventKind = "after_reset_failed" // Config.AfterReset failed
	EventFailed           EventKind = "failed"             // a back end failed during background work
	EventQueued           EventKind = "queued"             // work entered the durable outbox
	EventRetry            EventKind = "retry"              // a delivery failed and will be retried
	EventDead             EventKind = "dead"               // a message was moved aside
	EventOutboxStats      EventKind = "outbox_stats"       // outbox figures, in Outbox
	EventDropped          EventKind = "dropped"            // a public request found the queue full
	EventPruned           EventKind = "pruned"             // expired records were removed, in Pruned
)

// Event describes one thing the service did, for audit logs and metrics.
// It carries no token, link or email address.
type Event struct {
	Kind      EventKind
	Time      time.Time
	UserID    string        // empty when unknown
	MessageID string        // for EventSent, EventSendFailed and EventRequested with mail
	MailKind  string        // KindReset or KindChanged, with MessageID
	Err       error         // for failures
	Outbox    *OutboxReport // for EventOutboxStats
	Pruned    *Pruned       // for EventPruned
}

// Defaults for the zero values of [OutboxOptions].
const (
	DefaultOutboxMaxPending    = 100000
	DefaultOutboxWorkers       = 2
	DefaultOutboxBatch         = 4 // for a Mailer that is not a BatchMailer
	DefaultOutboxPoll          = time.Second
	DefaultOutboxLease         = 10 * time.Second // with a Store that is a LeaseRenewer
	DefaultOutboxFixedLease    = 2 * time.Minute  // with a Store that cannot renew leases
	DefaultOutboxBudgetKey     = "mail"
	DefaultOutboxMaxAttempts   = 10
	DefaultOutboxMaxAge        = 24 * time.Hour
	DefaultOutboxRetryBase     = 10 * time.Second
	DefaultOutboxRetryMax      = 15 * time.Minute
	DefaultOutboxStats         = time.Minute
	DefaultOutboxCheck         = time.Second
	DefaultOutboxPrune         = 10 * time.Minute
	DefaultOutboxPruneBatch    = 1000
	DefaultOutboxDeadRetention = 7 * 24 * time.Hour
)

// OutboxOptions turns on the durable outbox (see [Config.Outbox]). Every
// field but Keys is optional.
type OutboxOptions struct {
	// Keys seal what an envelope holds (the typed address, the caller's
	// link, the rendered email) with AES-256-GCM: the first key seals, all
	// of them open. See [SealKey] for the safe order of a key rotation.
	// Required: without a key the outbox does not start.
	Keys []SealKey

	// MaxPending bounds the outbox, approximately: the Service counts the
	// pending envelopes (up to MaxPending) at most every CheckInterval, in
	// the background, so that a request is one write whatever the backlog.
	// While the count is at MaxPending, public requests are dropped
	// (counted, logged, EventDropped; the caller's answer does not change)
	// and trusted requests fail with ErrQueueFull before changing
	// anything. All instances together can overshoot by what they accept
	// in one CheckInterval. Notices are never refused. Default 100,000.
	MaxPending int
	// CheckInterval is the longest time between two counts of the outbox
	// for MaxPending. Default 1 second.
	CheckInterval time.Duration
	// Workers is how many goroutines [Service.RunOutbox] runs. Default 2.
	Workers int
	// Batch is how many envelopes a worker claims at once. When the
	// Mailer is a [BatchMailer], the messages of one claim go to the
	// provider in one call, so Batch is capped at its MaxBatch. Default:
	// the Mailer's MaxBatch for a BatchMailer (100 for Resend), 4 otherwise.
	// Every instance that shares an outbox should use the same Batch (see
	// "Batches" in the package documentation).
	Batch int

	// Rate is how many calls a second the provider accepts from the whole
	// account, all instances together: every instance that shares the Store
	// draws each Mailer call (one message, or one batch) from one budget
	// kept in the Store when it is a [Budgeter], or in this process
	// otherwise. When the provider still answers with a [*RateLimitError],
	// every worker of every instance waits out its RetryAfter.
	//
	// Default 0: the Mailer's own figure when it is a [RateLimitedMailer]
	// (resendmailer advertises its Options.Rate, Resend's 2 a second unless
	// changed, and its Burst), otherwise no budget (smtpmailer advertises
	// none: SMTP servers have no fixed call rate). A positive Rate
	// overrides the Mailer's; a negative one means no budget at all: calls
	// are made as fast as the workers go.
	//
	// Each call reserves the next slot before it is made, so the calls
	// start at most Rate a second (after an initial Burst) measured on the
	// wall clock of each instance; a provider that counts arrivals in a
	// sliding second sees at most Burst+1 calls in any second if the
	// instances' clocks agree within a few milliseconds. The drain then
	// runs at the limit, not below it: three processes on MariaDB against
	// a fake Resend limited to 2 calls a second made 2.007 calls a second
	// (300 calls in 149.5 s), none answered 429; see "Delivery at scale"
	// in BENCHMARKS.md.
	Rate float64
	// Burst is how many calls may start at once from an idle budget.
	// Default: the [RateLimitedMailer]'s burst when Rate comes from it,
	// otherwise 1, which keeps a strict 1/Rate spacing between calls.
	Burst int
	// BudgetKey names the budget in the Store, so that Services sending
	// through different provider accounts can share one Store. Default
	// "mail".
	BudgetKey string
	// PollInterval is how long an idle worker waits before looking for
	// work again (work queued by the same Service wakes it at once).
	// Default 1 second.
	PollInterval time.Duration
	// Lease is how long a claim lasts: a worker that dies holding one
	// frees it when it ends, so a dead worker's messages wait up to Lease.
	//
	// With a Store that is a [LeaseRenewer] (memstore, mysqlstore and
	// pgstore are), a live worker renews its leases every Lease/3 while it
	// holds them, so a slow send keeps its claim and Lease can be short. A
	// worker whose renewals fail cancels its send before the lease can
	// run out, and a worker that finds an envelope taken by another stops
	// working on it before sending: two live workers never send one
	// message at once. Lease must then exceed the time a renewal takes
	// (one UPDATE), with room: at least 1 second. Default 10 seconds, so
	// that a dead worker's messages go out within 15 seconds of its death.
	//
	// With a Store that cannot renew, the lease has to cover a whole send:
	// it must exceed Config.SendTimeout. Default 2 minutes.
	Lease time.Duration
	// MaxAttempts and MaxAge bound the retries of a message that fails
	// transiently; past either it is moved aside as dead. Defaults 10 and
	// 24 hours.
	//
	// Only answers count as attempts. A call whose answer never came (it
	// timed out after Config.SendTimeout, or the connection broke) has an
	// unknown outcome: the provider may have sent the message. It is
	// retried with the same idempotency key (for a batch: the same key and
	// the same messages in the same order), which a provider such as Resend
	// answers from its record of the first call without sending again; it
	// counts against MaxAge only, so a slow provider never makes a
	// delivered message dead. A provider without idempotency keys (SMTP)
	// cannot tell a retry from a new message: an unknown outcome there may
	// become a duplicate email. A rate-limit answer is not the message's
	// fault and does not count either.
	MaxAttempts int
	MaxAge      time.Duration
	// RetryBase and RetryMax shape the per-message exponential backoff
	// with full jitter. Defaults 10 seconds and 15 minutes.
	RetryBase time.Duration
	RetryMax  time.Duration
	// WorkerID names this process's claims. Default: random.
	WorkerID string
	// StatsInterval is how often [Service.RunOutbox] reads the outbox's
	// figures and emits them as an EventOutboxStats event. Default 1
	// minute; negative turns it off.
	StatsInterval time.Duration
	// PruneInterval is how often [Service.RunOutbox] runs [Service.Prune]
	// (expired tokens, ended cooldowns, dead envelopes past DeadRetention).
	// Default 10 minutes; negative turns it off.
	PruneInterval time.Duration
	// PruneBatch is how many rows of one kind a prune statement removes at
	// most, so that it never holds many locks at once. Default 1,000.
	PruneBatch int
	// DeadRetention is how long dead envelopes are kept for an operator
	// to list and revive before a prune deletes them. Default 7 days.
	DeadRetention time.Duration
}
