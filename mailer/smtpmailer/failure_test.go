package smtpmailer_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/smtpmailer"
	"github.com/passreset/passreset/reset"
)

// newFakeMailer returns a Mailer for f whose failed sends are counted.
func newFakeMailer(t *testing.T, f *fakeSMTP, o smtpmailer.Options) (*smtpmailer.Mailer, func() int) {
	t.Helper()
	var mu sync.Mutex
	attempts := 0
	o.Logger = countingLogger(&mu, &attempts)
	m, err := smtpmailer.New(f.options(o))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, func() int {
		mu.Lock()
		defer mu.Unlock()
		return attempts
	}
}

// at returns a reply function that answers step with reply, and every
// other step as usual.
func at(step, reply string) func(int, string) string {
	return func(_ int, s string) string {
		if s == step {
			return reply
		}
		return ""
	}
}

func plainMessage(to string) reset.Message {
	return testMessage(to, "https://app.example.com/reset?token=abc")
}

func TestReplyCodes(t *testing.T) {
	for _, tt := range []struct {
		step, reply string
		command     string
		permanent   bool
	}{
		{"greeting", "554 5.7.1 no service for you", "connect", true},
		{"greeting", "421 4.3.2 try later", "connect", false},
		{"MAIL", "452 4.3.1 insufficient system storage", "MAIL", false},
		{"MAIL", "553 5.7.1 sender not allowed", "MAIL", true},
		{"RCPT", "450 4.2.0 mailbox busy", "RCPT", false},
		{"RCPT", "550 5.1.1 <ada@example.com>: no such user", "RCPT", true},
		{"DATA", "451 4.3.0 try again", "DATA", false},
		{"DATA", "554 5.5.1 no valid recipients", "DATA", true},
		{"end", "452 4.3.4 over quota", "end of data", false},
		{"end", "552 5.3.4 message too big", "end of data", true},
		{"end", "421 4.4.2 closing", "end of data", false},
	} {
		t.Run(tt.step+" "+tt.reply[:3], func(t *testing.T) {
			f := newFake(t, at(tt.step, tt.reply))
			m, attempts := newFakeMailer(t, f, smtpmailer.Options{})
			err := m.Send(background(t), plainMessage("ada@example.com"))
			var se *smtpmailer.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			code := tt.reply[:3]
			if se.Command != tt.command || !strings.HasPrefix(tt.reply, code) || se.Enhanced != tt.reply[4:9] {
				t.Errorf("Error = %+v, want %s refusing %s", se, tt.reply, tt.command)
			}
			if strings.Contains(err.Error(), "ada@example.com") {
				t.Errorf("err %q holds the recipient", err)
			}
			if got := errors.Is(err, reset.ErrPermanent); got != tt.permanent {
				t.Errorf("permanent = %v, want %v (%v)", got, tt.permanent, err)
			}
			if got := errors.Is(err, smtpmailer.ErrTransient); got == tt.permanent {
				t.Errorf("transient = %v, want %v", got, !tt.permanent)
			}
			if n, c := attempts(), f.connections(); n != 1 || c != 1 {
				t.Errorf("%d failed sends on %d connections, want 1 and 1: one attempt", n, c)
			}
		})
	}
}

func TestTransientThenRetrySucceeds(t *testing.T) {
	var rcpts atomic.Int32
	f := newFake(t, func(_ int, step string) string {
		if step == "RCPT" && rcpts.Add(1) == 1 {
			return "451 4.7.1 greylisted, try again"
		}
		return ""
	})
	m, attempts := newFakeMailer(t, f, smtpmailer.Options{})
	err := m.Send(background(t), plainMessage("ada@example.com"))
	if !errors.Is(err, smtpmailer.ErrTransient) || errors.Is(err, reset.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want transient", err)
	}
	// The queue's retry.
	if err := m.Send(background(t), plainMessage("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	if n, got, c := attempts(), len(f.received()), f.connections(); n != 1 || got != 1 || c != 2 {
		t.Errorf("%d failed sends, %d messages, %d connections; want 1, 1, 2", n, got, c)
	}
}

func TestSilentServerTimesOut(t *testing.T) {
	f := newFake(t, at("greeting", hang))
	m, attempts := newFakeMailer(t, f, smtpmailer.Options{Timeout: 50 * time.Millisecond})
	err := m.Send(background(t), plainMessage("ada@example.com"))
	if !errors.Is(err, smtpmailer.ErrTransient) || !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, reset.ErrPermanent) {
		t.Fatalf("err = %v, want a transient timeout", err)
	}
	if n := attempts(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestCancelStopsSend(t *testing.T) {
	for _, step := range []string{"greeting", "RCPT", "end"} {
		t.Run(step, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := newFake(t, func(_ int, s string) string {
				if s == step {
					cancel() // the server is now ignoring the client
					return hang
				}
				return ""
			})
			// Without the cancellation Send would wait for a minute.
			m, _ := newFakeMailer(t, f, smtpmailer.Options{Timeout: time.Minute})
			err := m.Send(ctx, plainMessage("ada@example.com"))
			if !errors.Is(err, context.Canceled) || errors.Is(err, reset.ErrPermanent) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			// After the end of the data the server may have the message.
			if got := errors.Is(err, reset.ErrOutcomeUnknown); got != (step == "end") {
				t.Errorf("unknown outcome = %v, want %v (%v)", got, step == "end", err)
			}
			if c := f.connections(); c != 1 {
				t.Errorf("%d connections, want 1", c)
			}
		})
	}
}

func TestDropMidDataIsNotDelivered(t *testing.T) {
	f := newFake(t, at("DATA", dropMidData))
	m, _ := newFakeMailer(t, f, smtpmailer.Options{})
	err := m.Send(background(t), plainMessage("ada@example.com"))
	// The server left after one line of the data. Whether the client's
	// last write (the end of the data) failed first, or only the read of
	// the reply, depends on the scheduler: transient or unknown, never
	// permanent, and nothing was delivered.
	if err == nil || errors.Is(err, reset.ErrPermanent) ||
		!(errors.Is(err, smtpmailer.ErrTransient) || errors.Is(err, reset.ErrOutcomeUnknown)) {
		t.Fatalf("err = %v, want transient or unknown", err)
	}
	if n := len(f.received()); n != 0 {
		t.Errorf("the server read %d whole messages, want 0", n)
	}
}

func TestNoReplyToEndOfDataIsAnUnknownOutcome(t *testing.T) {
	// The server reads the whole message, then leaves without a word: it
	// may have accepted it, and a resend could deliver it twice.
	f := newFake(t, at("end", drop))
	var logs syncBuffer
	m, err := smtpmailer.New(f.options(smtpmailer.Options{Logger: textLogger(&logs)}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Send(background(t), plainMessage("ada@example.com"))
	if !errors.Is(err, reset.ErrOutcomeUnknown) || errors.Is(err, smtpmailer.ErrTransient) || errors.Is(err, reset.ErrPermanent) {
		t.Fatalf("err = %v, want reset.ErrOutcomeUnknown only", err)
	}
	if c, n := f.connections(), len(f.received()); c != 1 || n != 1 {
		t.Errorf("%d connections and %d messages read, want 1 and 1", c, n)
	}
	if !strings.Contains(logs.String(), "unknown_outcome=true") {
		t.Errorf("log does not say unknown_outcome=true:\n%s", logs.String())
	}
}

func TestEachSendIsOneSession(t *testing.T) {
	// The server closes each connection after one message; each Send
	// opens its own, so none notices.
	f := newFake(t, at("end", acceptAndDrop))
	m, attempts := newFakeMailer(t, f, smtpmailer.Options{})
	for range 3 {
		if err := m.Send(background(t), plainMessage("ada@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	if c, n, a := f.connections(), len(f.received()), attempts(); c != 3 || n != 3 || a != 0 {
		t.Errorf("%d connections, %d messages, %d failed sends; want 3, 3, 0", c, n, a)
	}
}

func TestCRAMMD5(t *testing.T) {
	for _, tt := range []struct {
		auth   smtpmailer.Auth
		secret string
		ok     bool
	}{
		{smtpmailer.AuthCRAMMD5, "s3cret", true},
		{smtpmailer.AuthAuto, "s3cret", true}, // the only mechanism offered
		{smtpmailer.AuthCRAMMD5, "wrong", false},
	} {
		t.Run(string(tt.auth)+" "+tt.secret, func(t *testing.T) {
			f := newFake(t, nil)
			f.cram = "ada:s3cret"
			m, _ := newFakeMailer(t, f, smtpmailer.Options{Username: "ada", Password: tt.secret, Auth: tt.auth})
			err := m.Send(background(t), plainMessage("ada@example.com"))
			var se *smtpmailer.Error
			switch {
			case tt.ok && err != nil:
				t.Fatal(err)
			case !tt.ok && (!errors.As(err, &se) || se.Code != 535 || !errors.Is(err, reset.ErrPermanent)):
				t.Fatalf("err = %v, want a permanent 535", err)
			}
		})
	}
}

func TestMechanismNotOffered(t *testing.T) {
	f := newFake(t, nil)
	f.cram = "ada:s3cret"
	m, _ := newFakeMailer(t, f, smtpmailer.Options{Username: "ada", Password: "s3cret", Auth: smtpmailer.AuthPlain})
	err := m.Send(background(t), plainMessage("ada@example.com"))
	if !errors.Is(err, smtpmailer.ErrTransient) || !strings.Contains(err.Error(), "PLAIN") {
		t.Fatalf("err = %v, want a transient failure naming PLAIN", err)
	}
}

func TestUnsendableMessagesArePermanent(t *testing.T) {
	f := newFake(t, nil)
	m, _ := newFakeMailer(t, f, smtpmailer.Options{})
	for name, mutate := range map[string]func(*reset.Message){
		"no address":       func(m *reset.Message) { m.To = "not an address" },
		"a display name":   func(m *reset.Message) { m.To = "Ada <ada@example.com>" },
		"line break":       func(m *reset.Message) { m.Subject = "Reset\r\nBcc: eve@example.com" },
		"no body":          func(m *reset.Message) { m.Text, m.HTML = "", "" },
		"recipient breaks": func(m *reset.Message) { m.To = "ada@example.com\r\nRCPT TO:<eve@example.com>" },
	} {
		msg := plainMessage("ada@example.com")
		mutate(&msg)
		if err := m.Send(background(t), msg); !errors.Is(err, reset.ErrPermanent) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
	if c := f.connections(); c != 0 {
		t.Errorf("%d connections, want 0", c)
	}
}

func TestSendAfterClose(t *testing.T) {
	f := newFake(t, nil)
	m, _ := newFakeMailer(t, f, smtpmailer.Options{})
	if err := m.Send(background(t), plainMessage("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	err := m.Send(background(t), plainMessage("ada@example.com"))
	if !errors.Is(err, smtpmailer.ErrClosed) || errors.Is(err, reset.ErrPermanent) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Passwords that hold URL delimiters, and the characters base64 and
// quoting use.
var hostilePasswords = []string{"S3cr3t/?#@:%pw", "pa ss:w@rd#1", "100%/?x", "hunter2"}

// A server that echoes every command in its refusals, AUTH included: the
// error holds no part of the credentials and no address.
func TestEchoingServerLeaksNothing(t *testing.T) {
	const user = "ada.user@acme.example"
	for _, pass := range hostilePasswords {
		for _, tc := range []struct {
			auth smtpmailer.Auth
			echo string
		}{
			{smtpmailer.AuthPlain, "AUTH"},
			{smtpmailer.AuthLogin, "AUTH"},
			{smtpmailer.AuthPlain, "RCPT"},
			{smtpmailer.AuthLogin, "RCPT"},
		} {
			f := newFake(t, nil)
			f.echo = tc.echo
			var logs syncBuffer
			m, err := smtpmailer.New(f.options(smtpmailer.Options{Username: user, Password: pass, Auth: tc.auth, Logger: textLogger(&logs)}))
			if err != nil {
				t.Fatal(err)
			}
			to := "grace.hopper@example.com"
			err = m.Send(background(t), plainMessage(to))
			var se *smtpmailer.Error
			if !errors.As(err, &se) || se.Command != tc.echo || !errors.Is(err, reset.ErrPermanent) {
				t.Fatalf("%s %s: err = %v, want a permanent refusal of %s", tc.auth, tc.echo, err, tc.echo)
			}
			secrets := []string{pass, user, to, "hunter", "S3cr3t", "grace", "example.com",
				base64.StdEncoding.EncodeToString([]byte(user)), base64.StdEncoding.EncodeToString([]byte(pass)),
				base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))}
			for _, out := range []string{err.Error(), logs.String()} {
				for _, secret := range secrets {
					if strings.Contains(out, secret) {
						t.Errorf("%s %s: %q holds %q", tc.auth, tc.echo, out, secret)
					}
				}
				if strings.Contains(out, "@") {
					t.Errorf("%s %s: %q holds an address", tc.auth, tc.echo, out)
				}
			}
			if tc.echo == "RCPT" && (se.Enhanced != "5.1.1" || !strings.Contains(se.Text, "Recipient address rejected")) {
				t.Errorf("RCPT refusal %+v, want 5.1.1 and the plain words kept", se)
			}
		}
	}
}

// A refusal that quotes the recipient, as Postfix does, keeps its code,
// its enhanced status and its words, not the address.
func TestRefusalQuotingTheRecipient(t *testing.T) {
	to := "Ada.Lovelace@Example.com"
	f := newFake(t, at("RCPT", "550 5.1.1 <ada.lovelace@example.com>: Recipient address rejected: User unknown in virtual mailbox table"))
	m, _ := newFakeMailer(t, f, smtpmailer.Options{})
	err := m.Send(background(t), plainMessage(to))
	var se *smtpmailer.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	want := smtpmailer.Error{Command: "RCPT", Code: 550, Enhanced: "5.1.1",
		Text: "5.1.1 [redacted] Recipient address rejected: User unknown in virtual mailbox table"}
	if *se != want {
		t.Errorf("Error = %#v, want %#v", *se, want)
	}
	if strings.Contains(strings.ToLower(err.Error()), "lovelace") {
		t.Errorf("err %q holds the recipient", err)
	}
}
