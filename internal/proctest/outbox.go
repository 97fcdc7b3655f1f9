// Package storetest holds the test harness that store/mysqlstore and
// store/pgstore share: the outbox tests' configuration and checks, the
// child processes of the durability tests (kill -9 of a worker mid-drain,
// several worker processes), a connector that loses answers, and a
// private database server to restart.
//
// It holds no SQL: each store's tests open their own database, make their
// own tables and keep the statements they check beside them; this package
// reaches a store only through the reset interfaces and small functions
// the store's tests pass in.
package proctest

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
)

// NewSealKey returns a random outbox key.
func NewSealKey() reset.SealKey {
	k := reset.SealKey{ID: "test-key", Key: make([]byte, 32)}
	rand.Read(k.Key)
	return k
}

// OutboxConfig is the Service configuration of the outbox tests, in the
// test process and in the child processes: short leases and retries, so
// that a killed worker's envelopes come back within seconds. SendTimeout
// leaves room for a loaded machine: a send that times out is retried, and
// enough of them in a row would move a message aside.
func OutboxConfig(store reset.Store, users reset.Users, mailer reset.Mailer, key reset.SealKey) reset.Config {
	return reset.Config{
		Store: store, Users: users, Mailer: mailer,
		ResetURL:    "https://app.example.com/reset",
		Logger:      slog.New(slog.DiscardHandler),
		SendTimeout: 8 * time.Second,
		Outbox: &reset.OutboxOptions{
			Keys:         []reset.SealKey{key},
			Lease:        10 * time.Second,
			PollInterval: 20 * time.Millisecond,
			RetryBase:    100 * time.Millisecond,
			RetryMax:     time.Second,
		},
	}
}

// SeedUsers adds n accounts, user<i>@example.com with ID user<i>.
func SeedUsers(users *resettest.Users, n int) {
	for i := range n {
		users.Add(fmt.Sprintf("user%d", i), fmt.Sprintf("user%d@example.com", i), "old password")
	}
}

// SendOnly hides a Mailer's SendBatch, so that the outbox sends one
// message per call: the tests written for that path keep testing it.
type SendOnly struct{ reset.Mailer }

// CheckDelivered checks that the fake accepted exactly one email for each
// of user0..user<n-1>, one per idempotency key and recipient (a batch's
// emails share the batch's key), and that each mailed link works.
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
	if len(emails) != n || len(to) != n || len(keys) != n {
		t.Fatalf("%d emails to %d recipients with %d idempotency keys and recipients, want %d of each", len(emails), len(to), len(keys), n)
	}
	for i := range n {
		if addr := fmt.Sprintf("user%d@example.com", i); to[addr] != 1 {
			t.Fatalf("%s got %d emails", addr, to[addr])
		}
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
