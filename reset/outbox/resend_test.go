package outbox_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// These tests run the outbox against resendtest through resendmailer and
// the real resend-go client: idempotency keys, batches, faults and rate
// windows as the provider's stand-in enforces them.

func newResendMailer(t *testing.T, srv *resendtest.Server, timeout time.Duration) *resendmailer.Mailer {
	t.Helper()
	m, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "Acme <security@acme.example>",
		BaseURL: srv.URL, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// single hides a Mailer's batch and rate capabilities: one email a call.
type single struct{ reset.Mailer }

// wantEachOnce checks the provider's record: exactly one email to each of
// the n recipients, none missing, and nothing pending or dead.
func wantEachOnce(t *testing.T, srv *resendtest.Server, e *env, n int) {
	t.Helper()
	byTo := map[string]int{}
	for _, m := range srv.Emails() {
		for _, to := range m.To {
			byTo[to]++
		}
	}
	for i := range n {
		if c := byTo[fmt.Sprintf("r%d@anywhere.com", i)]; c != 1 {
			t.Errorf("r%d@anywhere.com got %d emails, want 1", i, c)
		}
	}
	if len(byTo) != n {
		t.Errorf("%d recipients got mail, want %d", len(byTo), n)
	}
	if r := e.report(t); r.Pending != 0 || r.Dead != 0 {
		t.Errorf("report %+v, want nothing pending or dead", r)
	}
}

// #20: with the provider failing in each way (500, a hang, a connection
// dropped before the work, and accepted with the answer lost), switched
// on and off between drains, every recipient gets exactly one email, with
// batches and without.
func TestResendFaults(t *testing.T) {
	const n = 24
	for _, batches := range []bool{true, false} {
		for _, mode := range []resendtest.FaultMode{resendtest.Answer500, resendtest.Hang, resendtest.DropBefore, resendtest.AcceptThenDrop} {
			t.Run(fmt.Sprintf("%v/batches=%v", mode, batches), func(t *testing.T) {
				srv := resendtest.NewServer()
				defer srv.Close()
				var m reset.Mailer = newResendMailer(t, srv, 300*time.Millisecond)
				if !batches {
					m = single{m}
				}
				e := newEnv(t, func(c *reset.Config, o *outbox.Options) {
					c.Mailer, c.Cooldown = m, -1
					o.Rate, o.Batch = -1, 8
					if mode != resendtest.Answer500 {
						// Only answers count: outcomes that are unknown
						// never use up the attempts.
						o.MaxAttempts = 2
					}
				})
				for i := range n {
					addr := fmt.Sprintf("r%d@anywhere.com", i)
					e.users.Add(fmt.Sprintf("r%d", i), addr, oldPass)
					if err := e.svc.Request(t.Context(), addr, ""); err != nil {
						t.Fatal(err)
					}
				}
				srv.SetFaultMode(mode, 2) // every second call
				for range 4 {
					e.drain(t)
					e.clock.Advance(time.Hour)
				}
				srv.SetFaultMode(resendtest.NoFault, 0)
				for range 10 {
					e.drain(t)
					if r := e.report(t); r.Pending == 0 {
						break
					}
					e.clock.Advance(time.Hour)
				}
				wantEachOnce(t, srv, e, n)
			})
		}
	}
}

// #20: three instances share one budget against a provider that counts a
// sliding second, refused calls included, at 2 calls a second: paced at
// nine tenths of the advertised rate, none of their calls is refused.
func TestResendSlidingWindowShared(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 5 seconds of real time")
	}
	srv := resendtest.NewServer()
	defer srv.Close()
	srv.SetSlidingRateLimit(2, time.Second)
	const n = 9
	first := newEnv(t, func(c *reset.Config, o *outbox.Options) {
		c.Mailer, c.Cooldown = newResendMailer(t, srv, 5*time.Second), -1
		o.Batch = 1
	})
	envs := []*env{first}
	for range 2 {
		envs = append(envs, newEnv(t, func(c *reset.Config, o *outbox.Options) {
			c.Store, c.Users, c.Now, c.Cooldown = first.store, first.users, first.clock.Now, -1
			c.Mailer = newResendMailer(t, srv, 5*time.Second)
			o.Batch = 1
		}))
	}
	for i := range n {
		addr := fmt.Sprintf("r%d@anywhere.com", i)
		first.users.Add(fmt.Sprintf("r%d", i), addr, oldPass)
		if err := envs[i%3].svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, e := range envs {
		wg.Go(func() { e.ob.Drain(t.Context()) })
	}
	wg.Wait()
	if st := srv.Stats(); st.RateLimited != 0 {
		t.Fatalf("%d of %d calls refused for the rate", st.RateLimited, st.Calls)
	}
	wantEachOnce(t, srv, first, n)
}
