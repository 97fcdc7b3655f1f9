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
//   - [Mailer] delivers one already rendered [Message].
//
// A [Service] ties them together:
//
//   - [Service.Request] is PingOne's "password-lost" for a trusted caller: it
//     issues a new token for a known account (every older token of that user
//     stops working in the same atomic step), mails the link unless asked not
//     to, and returns the link. An unknown address gives [ErrUnknownUser].
//   - [Service.Request] is the same operation for anyone on the
//     internet. It validates the input, hands the work to a background
//     worker and returns before any account is looked up, so neither its
//     answer nor its timing tells whether the address has an account. A
//     per-address cooldown limits how often mail is sent.
//   - [Service.Inspect] tells who a token belongs to and when it expires
//     without consuming it, so that a page a link opens survives mail
//     scanners that fetch every link.
//   - [Service.Complete] checks the new password against the policy,
//     consumes the token atomically (of many concurrent completions with one
//     token exactly one succeeds), sets the password, revokes every other
//     token of the user, runs [Config.AfterReset] and sends a "your password
//     was changed" notice. It never logs the user in.
//   - [Service.RevokeAll] invalidates every token of a user, for programs
//     whose passwords change elsewhere.
//
// Package reset imports only the standard library. HTTP lives in package
// httpadapter; stores and mailers live in their own packages, and
// package resettest holds a conformance suite for stores and test doubles.
package reset
