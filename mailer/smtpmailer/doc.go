// Package smtpmailer is a [reset.Mailer] that sends over SMTP, the
// protocol every mail provider speaks (Amazon SES, Postmark, Mailgun,
// SendGrid, Google Workspace, Microsoft 365, a relay of your own), with
// github.com/wneessen/go-mail.
//
//	m, err := smtpmailer.NewFromURL(os.Getenv("SMTP_URL"), smtpmailer.Options{
//		From: "Acme <security@acme.example>",
//	})
//	...
//
// # Connections
//
// Each Send opens one session with go-mail's client (TCP, TLS, EHLO,
// STARTTLS as required, AUTH with go-mail's mechanism discovery or the one
// named in Options.Auth), makes one mail transaction (MAIL FROM, RCPT TO,
// DATA) and closes it. No connection is held between sends and no
// goroutine runs; [Mailer.Close] only refuses later sends. When the
// context passed to Send ends, its connection is closed at once.
// [Mailer.Check] connects and authenticates without sending, to find a
// wrong host, TLS mode or password at start.
//
// TLS is required by default: implicit TLS on port 465, STARTTLS on any
// other port, refusing a server that does not offer it with an error that
// says to use smtp+plain:// (TLSNone) for a local development server.
// Plain text is accepted only for a loopback host, unless
// Options.AllowInsecureRemote says otherwise. Certificates are checked
// against the system's roots or Options.TLSConfig.
//
// # The message
//
// Each message is multipart/alternative with the text part first and the
// HTML part second (or just the one that is not empty), UTF-8, both parts
// quoted-printable: every line stays within 76 characters whatever the
// length of the link, and decoding gives back the exact text. Subjects
// and display names outside ASCII are encoded per RFC 2047. The headers
// are From, To, Reply-To (when set), Subject, Date, Message-ID
// "<message ID@From's domain>" (the same on every attempt of a message),
// MIME-Version, Auto-Submitted: auto-generated (RFC 3834, so that vacation
// responders stay quiet) and X-Auto-Response-Suppress: All (the same for
// Microsoft Exchange).
//
// # One attempt, classified
//
// A Send is one attempt: the Mailer never retries, backs off or paces. The
// queue that calls it (reset's in-process queue or the durable outbox)
// owns retries and their timing, so there is nothing to switch off.
//
//	what happened                                 class      errors.Is / errors.As
//	5xx reply to MAIL, RCPT, DATA or the message  permanent  ErrPermanent, reset.ErrPermanent, *Error
//	5xx reply while connecting or to AUTH         permanent  ErrPermanent, reset.ErrPermanent, *Error
//	(such as 535 bad credentials)
//	a message that cannot be sent (no body,       permanent  ErrPermanent, reset.ErrPermanent
//	invalid recipient, a line break in a header)
//	4xx reply to any command                      temporary  ErrTransient, *Error
//	connection refused, reset, dropped or timed   temporary  ErrTransient
//	out before the end of the data, a TLS
//	failure, no STARTTLS or no usable AUTH
//	the message sent, but no reply to its end     unknown    reset.ErrOutcomeUnknown
//	(go-mail's ErrSMTPDataClose without a reply)
//	Send after Close                              -          ErrClosed
//	the ctx of Send ended                         -          also wraps ctx.Err()
//
// # Duplicates: SMTP has no idempotency key
//
// Unlike Resend's API, SMTP has no way to say "this is a retry of a
// message you may already have". When the message was sent in full but
// its acceptance never came back, the server may or may not have taken it:
// Send returns reset.ErrOutcomeUnknown, and a queue that retries it may
// deliver a second copy. Both copies are the same email with the same link
// and the same Message-ID, which mail clients and many mailbox servers use
// to drop the second. A duplicate is the price of losing none; every
// failure before the end of the data, the common case, is known not to
// have delivered anything.
//
// # What is logged, and what errors hold
//
// With Options.Logger set, each failed and each accepted message is
// logged at Debug with the message's ID and kind, and for a refusal the
// command and reply code; the failure itself is the caller's to log. No
// error or log record holds the recipient, any part of the credentials,
// the link or the token, whatever the server echoes:
//
//   - an [*Error] keeps the refused command, the reply code and the
//     enhanced status code; of the reply's text it keeps each word only if
//     it is a plain word of letters (all lower case, all upper case or
//     capitalized, at most 24 letters), a number of at most 3 digits or an
//     enhanced status code, and does not contain the user name or the
//     password; every other word (an address, anything with @ < > / + =,
//     a base64 blob, a token, a URL, non-ASCII) becomes "[redacted]";
//   - a reply while connecting or to AUTH keeps no text at all: the AUTH
//     exchange is where credentials are sent, and a server may echo them;
//   - a failure that is not a reply (a broken connection, a TLS error)
//     keeps its description under the same word rule, and does not wrap
//     the underlying error, whose text could hold an address;
//   - errors about a URL (NewFromURL) never quote any part of it, since a
//     password with an unencoded delimiter can end up in any part.
//
// # Tests
//
// The tests run against Mailpit, a real SMTP server with an HTTP API, in
// plain, STARTTLS and implicit TLS configurations: scripts/mailpit.sh
// starts them and prints the environment the tests read; scripts/test.sh
// does both.
package smtpmailer
