// Package feedback records what the mail provider reports about the reset
// emails after it accepted them (sent, delivered, delayed, bounced,
// complained), stops reset emails to an address that bounced for good or
// whose owner marked one as spam, and answers a support tool's question
// "what happened to the last reset email of this person".
//
// No address is stored in the clear: a [Store] keeps the [Address], an
// HMAC-SHA-256 of the normalised address under the application's key
// ([Options.Key]), so that whoever reads the store cannot check a guessed
// address against it without the key.
//
// A provider adapter turns the provider's signed webhooks into calls to
// [Feedback.Record]: resendmailer.Webhook does it for Resend. It refuses
// unsigned, wrongly signed and stale posts before they reach Record, and
// Record refuses a replayed one (an event ID already stored) with
// [ErrReplayed], changing nothing.
//
// [Feedback.Suppressed] has the signature of reset.Config.Suppressed:
// set it there and the Service stops sending reset emails to a suppressed
// address, silently for public requests (the answer is the same; the
// queue drops the request after it), with an error for trusted ones.
// [Feedback.Clear] lifts the suppression, for example after the person
// confirmed the address works again.
package feedback
