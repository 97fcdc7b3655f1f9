// Package reset is the core of passreset: a secure "forgot password -> email
// link -> choose a new password" flow that any Go program can embed.
//
// The core is transport-neutral. It defines the roles it needs as small
// interfaces and implements the policy around them:
//
//   - [Store] keeps token records. Only a hash of each token is stored; the
//     plaintext exists in the returned link and the email, nowhere else.
//   - [Users] is implemented by the application: it finds an account by email
//     and sets a new password. The library never sees a password hash and
//     never stores a password.
//   - [Mailer] makes one attempt to deliver one rendered [Message] and says
//     what happened: accepted, refused for good ([ErrPermanent]), refused
//     for the provider's rate ([*RateLimitError]), no answer
//     ([ErrOutcomeUnknown]) or any other error (temporary).
//   - A [Queue] decides when each email is sent, paces the calls to the
//     provider and retries them.
//
// A [Service] ties them together:
//
//   - [Service.RequestTrusted] is PingOne's "password-lost" for a trusted
//     caller: it issues a new token for a known account (every older token
//     of that user stops working in the same atomic step), queues the email
//     unless asked not to, and returns the link. An unknown address gives
//     [ErrUnknownUser]. It may ask for an invitation instead of a reset
//     ([PurposeInvite]: its own email and page texts) and for a lifetime,
//     up to [Config.MaxInviteLifetime] or [Config.TokenTTL].
//   - [Service.Request] is the same operation for anyone on the internet.
//     It validates the input, puts the request in the queue and returns
//     before any account is looked up, so neither its answer nor its timing
//     tells whether the address has an account. The queue later calls
//     [Service.CarryOut], which looks the address up, applies a per-address
//     cooldown and daily limit, issues the token and renders the email.
//   - [Service.Inspect] tells who a token belongs to, what it was issued
//     for and when it expires without consuming it, so that a page a link opens survives mail
//     scanners that fetch every link. Both it and Complete refuse a token
//     issued under a credential stamp ([User.Stamp]) the account no
//     longer shows.
//   - [Service.Complete] checks the new password for the token's account
//     ([password.DefaultPolicy] unless [Config.PasswordPolicy] replaces it:
//     at least 15 characters, not a common or breached password, no
//     context words; and [Config.BreachedPasswords] if set) and, for an
//     account with a second factor ([SecondFactor]), its code, consumes
//     the token atomically (of many concurrent completions with one
//     token exactly one succeeds), sets the password, revokes every other
//     token of the user, ends the user's other sessions
//     ([Config.EndSessions], required unless [Config.KeepSessions]), runs
//     [Config.AfterReset] and queues a "your password was changed" notice;
//     [Config.EmailVerified] learns that the person controls the address.
//     It never logs the user in.
//   - [Service.RevokeAll] invalidates every token of a user, for programs
//     whose passwords change elsewhere and give no stamp; [Service.Prune]
//     removes expired tokens, cooldowns and daily budgets;
//     [Service.Shutdown] stops the Service.
//
// # The queue
//
// Without [Config.Queue] the Service runs the in-process queue: zero
// configuration, its work in memory. It paces calls at nine tenths of a
// [RateLimitedMailer]'s advertised rate, retries a failed email up to four
// times (the Retry-After of a rate-limit answer honoured, an unknown
// outcome retried with the same message and so the same idempotency key),
// and finishes its work at [Service.Shutdown]. Mail still queued when the
// process dies is lost.
//
// Package outbox (reset/outbox) is the durable queue: envelopes in the
// database, sealed, drained by workers in every instance under leases,
// batches, and a provider budget all instances share, each email sent
// exactly once through crashes. Set it as [Config.Queue] and run its Run.
//
// Package reset imports only the standard library. HTTP lives in package
// httpadapter; stores and mailers live in their own packages, and
// package resettest holds conformance suites for stores and test doubles.
package reset
