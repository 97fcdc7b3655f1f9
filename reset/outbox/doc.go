// Package outbox is passreset's durable queue: a [reset.Queue] that keeps
// the mail of every instance in one database, so that queued mail
// survives a crash and many processes send it together, each email
// exactly once.
//
// # Use
//
//	ob, err := outbox.New(store, outbox.Options{Keys: []outbox.SealKey{{ID: "k1", Key: key}}})
//	svc, err := reset.New(reset.Config{Store: store, Queue: ob, ...})
//	go ob.Run(ctx) // in at least one process; stop it through ctx
//
// The Service puts work in (a public request is one insert, whatever the
// address), and [Outbox.Run] takes it out. Building an outbox and never
// running it anywhere is a mistake the outbox reports: a minute after its
// first Put, a process that runs no workers checks the oldest pending
// envelope and logs a warning if nobody has taken it. [Outbox.Drain]
// carries out what is due once, for tests and cron jobs; [Outbox.Report],
// [Outbox.Dead] and [Outbox.Revive] are for operators, and read the Store,
// so a separate tool sees what every instance sees.
//
// # Envelopes
//
// An [Envelope] is a public request still to be carried out, a rendered
// email, or a batch of rendered emails. Everything that names a person
// (the typed address, the caller's link, the emails) is sealed with
// AES-256-GCM under [Options.Keys], bound to the envelope's ID; the Store
// sees bookkeeping only. Logs and stored errors carry envelope IDs
// (envelope_id, batch_key) and message IDs (message_id), never a token, a
// link or a whole address.
//
// # Workers, leases and order
//
// A worker claims up to [Options.Batch] due envelopes, in the order of
// NotBefore, then CreatedAt, then ID, under a lease it renews every
// Lease/3. A worker that dies frees its claims when the lease ends;
// nothing that gives an envelope back unchanged (a shutdown, a seal key
// this instance lacks, a budget that cannot be reached) moves its
// NotBefore, so the envelopes keep their place in the queue and a dead
// worker's mail goes out within Lease and a poll even behind a backlog.
//
// # Exactly once
//
// Every email has an idempotency key (a message's "<kind>/<id>", or a
// batch envelope's ID). Only an answer counts as an attempt: a call whose
// answer never came ([reset.ErrOutcomeUnknown], a timeout, a dropped
// connection, a send cancelled because its lease could not be renewed)
// is retried as it is, under the same key, which the provider answers
// from its record of the first call; a message sent alone is then only
// ever sent alone. A rate-limit answer counts no attempt either.
//
// With a [BatchMailer], a worker folds the ready emails of one claim into
// one batch envelope (one Replace: the members out, the batch in) before
// the provider sees its key, and records the answer in one more Replace
// (the batch out, the refused members back in with their own IDs and
// attempts). A batch is claimed, leased and retried as one envelope, so
// it is never split between claims and never resent under another key.
// A batch envelope that reaches a worker whose Mailer is not a
// BatchMailer is moved aside with a reason that says so.
//
// Providers keep idempotency keys for a limited time (Resend: 24 hours).
// An envelope whose next retry would come after [Options.MaxAge] (23
// hours by default) is moved aside instead; when the provider may have
// sent it, its last error says "outcome unknown", an [reset.EventDead]
// event and an ERROR log report it, and [Outbox.Revive] says what reviving
// it sends.
//
// # Provider budget
//
// Before each call to the provider a worker reserves a slot in a budget
// kept in the Store (Store.Reserve), shared by every instance: calls start
// one at a time, 1/Rate apart, at nine tenths of what a
// [reset.RateLimitedMailer] advertises unless [Options.Rate] says
// otherwise, so that a provider counting any window (fixed, sliding,
// counting refused calls) sees no call too many. A rate-limit answer
// pauses every instance for its Retry-After (Store.Pause) and halves this
// instance's rate, which recovers slowly with calls that are not refused.
// When the wait for a slot is cut short (shutdown) or the Store's budget
// fails, the worker sends nothing and gives the claim back unchanged.
package outbox
