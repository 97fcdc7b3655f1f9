// Package smtpmailer is a [reset.Mailer] that sends over SMTP, the
// protocol every mail provider speaks (Amazon SES, Postmark, Mailgun,
// SendGrid, Google Workspace, Microsoft 365, a relay of your own), with
// github.com/wneessen/go-mail.
//
//	m, err := smtpmailer.NewFromURL(os.Getenv("SMTP_URL"), smtpmailer.Options{
//		From: "Acme <security@acme.example>",
//	})
//	...
//	defer m.Close()
//
// # Connections
//
// A Mailer keeps up to Options.MaxConns sessions (TCP, TLS, EHLO, AUTH)
// open and reuses them for later sends, one message at a time each, so a
// burst of resets is not a burst of TLS handshakes. A session idle longer
// than Options.IdleTimeout is closed by the next Send; one found broken
// before the server took the message (the server dropped it, or answered
// 421) is replaced at once; one that failed in any other way is closed.
// [Mailer.Close] closes the idle sessions. No goroutine runs between
// sends.
//
// TLS is required by default: implicit TLS on port 465, STARTTLS on any
// other port, refusing a server that does not offer it. Plain text is
// accepted only for a loopback host, unless Options.AllowInsecureRemote
// says otherwise. Certificates are checked against the system's roots or
// Options.TLSConfig.
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
// # Failures
//
//	what happened                                 class      errors.Is / errors.As
//	5xx reply to MAIL, RCPT, DATA or the message  permanent  ErrPermanent, reset.ErrPermanent, *Error
//	5xx reply while connecting or to AUTH         permanent  ErrPermanent, reset.ErrPermanent, *Error
//	(such as 535 bad credentials)
//	a message that cannot be sent (no body,       permanent  ErrPermanent, reset.ErrPermanent
//	invalid recipient, a line break in a header)
//	4xx reply to any command                      transient  ErrTransient, *Error
//	connection refused, reset or dropped (also    transient  ErrTransient
//	in the middle of the data), a timeout, a TLS
//	failure, no STARTTLS or no usable AUTH
//	Send after Close                              -          ErrClosed
//	the ctx of Send ended                         -          wraps ctx.Err()
//
// A transient failure is retried up to Options.MaxAttempts attempts in
// all, with jittered exponential backoff, within Options.SendTimeout and
// the context. A permanent failure returns at once. [*Error] keeps the
// refused command, the reply code, the enhanced status code and the
// server's text, with the recipient's address replaced by "<recipient>".
//
// # Duplicates: SMTP has no idempotency key
//
// Unlike Resend's API, SMTP has no way to say "this is a retry of a
// message you may already have". When the message was sent in full but
// its acceptance never came back (a timeout or a dropped connection after
// the final "."), the server may or may not have taken it. Send does not
// retry such a failure itself (the log record says unsure=true) and
// returns a transient error; a durable outbox (reset.Config.Outbox) then
// retries the message later, and the recipient may receive it twice. Both
// copies are the same email with the same link and the same Message-ID,
// which mail clients and many mailbox servers use to drop the second. A
// duplicate is the price of losing none: the outbox delivers every
// message at least once or moves it aside, and each failure before the
// end of the data, the common case, is known not to have delivered
// anything.
//
// # What is logged
//
// With Options.Logger set, each failed attempt is logged at Warn and each
// accepted message at Debug with the message's ID and kind, the attempt
// number, whether a pooled session was used, and the refused command and
// reply code. The recipient, the credentials, the link and the token are
// never logged nor put in an error (server replies that quote the
// recipient have it replaced).
//
// # Tests
//
// The tests run against Mailpit, a real SMTP server with an HTTP API, in
// plain, STARTTLS and implicit TLS configurations: scripts/mailpit.sh
// starts them and prints the environment the tests read; scripts/test.sh
// does both.
package smtpmailer
