// Package proctest is the process, kill and fault harness of the SQL
// stores' tests: instances of the application (a Service with the durable
// outbox) in child processes that a test kills with SIGKILL, a fault
// proxy between the mailer and the Resend stand-in, private database
// servers to restart, and the checks that every recipient got exactly one
// email. Its own tests run it on MariaDB and on PostgreSQL.
//
// It holds no SQL: it reaches a store only through the reset and outbox
// interfaces and the small functions its caller passes in.
package proctest

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
)

// Store is what the harness needs of a store: a token store with the
// durable outbox, on tables named with a prefix.
type Store interface {
	reset.Store
	outbox.Store
	TablePrefix() string
}

// NewSealKey returns a random outbox key.
func NewSealKey() outbox.SealKey {
	k := outbox.SealKey{ID: "test-key", Key: make([]byte, 32)}
	rand.Read(k.Key)
	return k
}

// Instance is one instance of the application: a Service whose queue is
// the durable outbox, and the count of messages its workers sent.
type Instance struct {
	Service *reset.Service
	Outbox  *outbox.Outbox
	sent    atomic.Int64
}

// Sent returns how many messages this instance's workers sent (a batch
// counts its messages).
func (in *Instance) Sent() int { return int(in.sent.Load()) }

// NewInstance returns an instance on store with users and mailer, sealing
// with key. opt's Keys are set to key; its zero fields mean the outbox's
// defaults (a Rate of -1 turns the budget off, for a stand-in without a
// rate limit). edit, when not nil, changes the Service's configuration
// before it is made.
func NewInstance(store Store, users reset.Users, mailer reset.Mailer, key outbox.SealKey, opt outbox.Options, edit func(*reset.Config)) (*Instance, error) {
	opt.Keys = []outbox.SealKey{key}
	ob, err := outbox.New(store, opt)
	if err != nil {
		return nil, err
	}
	in := &Instance{Outbox: ob}
	cfg := reset.Config{
		KeepSessions: true,
		Store:        store, Users: users, Mailer: mailer, Queue: ob,
		ResetURL: "https://app.example.com/reset",
		Logger:   slog.New(slog.DiscardHandler),
		OnEvent: func(e reset.Event) {
			if e.Kind == reset.EventSent {
				in.sent.Add(1)
			}
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	if in.Service, err = reset.New(cfg); err != nil {
		return nil, err
	}
	return in, nil
}

// SeedUsers adds n accounts, user<i>@example.com with ID user<i>.
func SeedUsers(users *resettest.Users, n int) {
	for i := range n {
		users.Add(fmt.Sprintf("user%d", i), fmt.Sprintf("user%d@example.com", i), "old password")
	}
}

// SendOnly hides a Mailer's SendBatch, so that the outbox sends one
// message per call.
type SendOnly struct{ reset.Mailer }

// CheckDelivered checks that the stand-in accepted exactly one email for
// each of user0..user<n-1> and none for anyone else, one per idempotency
// key and recipient (a batch's emails share the batch's key), and that
// each mailed link works.
func CheckDelivered(t *testing.T, svc *reset.Service, fake *resendtest.Server, n int) {
	t.Helper()
	emails := fake.Emails()
	to := map[string]int{}
	keys := map[string]bool{}
	for _, e := range emails {
		if len(e.To) != 1 {
			t.Fatalf("email to %v", e.To)
		}
		to[e.To[0]]++
		keys[e.IdempotencyKey+" "+e.To[0]] = true
		if _, err := svc.Inspect(t.Context(), resettest.Token(e.Text)); err != nil {
			t.Errorf("the link mailed to %s does not work: %v", e.To[0], err)
		}
	}
	missing, twice := 0, 0
	for i := range n {
		switch addr := fmt.Sprintf("user%d@example.com", i); to[addr] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	if len(emails) != n || len(to) != n || len(keys) != n || missing != 0 || twice != 0 {
		t.Fatalf("%d emails to %d recipients with %d idempotency keys and recipients, want %d of each: %d recipients without an email, %d with more than one",
			len(emails), len(to), len(keys), n, missing, twice)
	}
}

// WaitFor polls cond every 10ms until it holds, failing the test after
// timeout. It serves for state in another process or a database, which
// has no event to wait on.
func WaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
