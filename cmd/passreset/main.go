// Command passreset answers an operator's questions about a passreset
// deployment, one command each: make a sealing key, show or apply the
// schema, how deep the outbox is and what failed, revive or purge what
// failed, send a test email, check a configuration, show what the mail
// provider reported about an address and lift its suppression.
//
// It reads the environment of examples/mysql-resend:
//
//	PASSRESET_MYSQL_DSN   the MySQL or MariaDB database
//	PASSRESET_PG_DSN      or the PostgreSQL one (exactly one of the two)
//	PASSRESET_TABLE_PREFIX  the stores' table prefix (default passreset_)
//	OUTBOX_KEY            base64 of the 32-byte sealing key; needed only to
//	                      show the addresses of dead messages (--reveal)
//	OUTBOX_KEY_ID         the key's name (default k1)
//	FEEDBACK_KEY          base64 of the delivery feedback's key
//	                      (feedback.Options.Key); needed only by feedback
//	RESEND_API_KEY        the Resend API key, or
//	SMTP_URL              an SMTP server, as smtpmailer.NewFromURL reads it
//	RESEND_BASE_URL       another Resend endpoint (optional)
//	MAIL_FROM             the sender of test emails
//	PUBLIC_URL            the app's external URL: the reset link base is
//	                      PUBLIC_URL/api/directory/reset, as in the example,
//	RESET_URL             unless this names it
//
// Reading the outbox (status, dead, revive, purge) needs no sealing key:
// the figures are the store's, for every instance together.
//
// Output is for people unless --json is given, which prints one JSON
// document. Exit codes:
//
//	0  done; the check or status found nothing wrong
//	1  the operation failed (database or mail server unreachable, a query failed)
//	2  usage or configuration error (a flag, a missing or malformed variable)
//	3  it ran, and found a problem: check failed, schema not current,
//	   outbox older than --max-age
//	4  not found: no dead message has that ID
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitProblem  = 3
	exitNotFound = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is the command line.
type cli struct {
	JSON bool `name:"json" help:"Print one JSON document instead of text."`

	Key    keyCmd    `cmd:"" help:"Make a new outbox sealing key (OUTBOX_KEY)."`
	Schema schemaCmd `cmd:"" help:"Show the schema, its version, or migrate."`
	Outbox outboxCmd `cmd:"" help:"Outbox status, dead messages, revive, purge (no sealing key needed)."`
	Send   sendCmd   `cmd:"" name:"send-test" help:"Send a test email through the configured mailer."`
	Check  checkCmd  `cmd:"" help:"Check the configuration: store, schema, mailer, reset link base."`

	Feedback feedbackCmd `cmd:"" help:"What the mail provider reported about an address's reset emails; lift its suppression (FEEDBACK_KEY)."`
}

// env is what every command gets.
type env struct {
	ctx    context.Context
	getenv func(string) string
	out    io.Writer
	json   bool
}

// usageError is a configuration or usage mistake: exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// problemError says that the command ran and found a problem: exit code 3.
// Its result has been printed already.
type problemError struct{ msg string }

func (e problemError) Error() string { return e.msg }

// notFoundError is exit code 4.
type notFoundError struct{ error }

func (e notFoundError) Unwrap() error { return e.error }

// exitCode ends kong's help and parse paths without ending the process.
type exitCode int

// run runs the command line args with the environment getenv, and returns
// the process's exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (code int) {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("passreset"),
		kong.Description("Operate a passreset deployment. Configured by the environment of examples/mysql-resend; see the package documentation for the variables and exit codes."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(n int) { panic(exitCode(n)) }),
		kong.UsageOnError(),
	)
	if err != nil {
		fmt.Fprintln(stderr, "passreset:", err)
		return exitFailed
	}
	defer func() {
		if r := recover(); r != nil {
			n, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(n)
			if code != 0 {
				code = exitUsage
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "passreset:", err)
		return exitUsage
	}
	err = kctx.Run(&env{ctx: ctx, getenv: getenv, out: stdout, json: c.JSON})
	var (
		usage    usageError
		problem  problemError
		notFound notFoundError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &problem):
		return exitProblem
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, "passreset:", err)
		return exitUsage
	case errors.As(err, &notFound):
		fmt.Fprintln(stderr, "passreset:", err)
		return exitNotFound
	}
	fmt.Fprintln(stderr, "passreset:", err)
	return exitFailed
}
