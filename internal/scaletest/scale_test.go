package scaletest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
)

// A provider that answers after the mailer's timeout: the first three
// calls are processed (their emails sent) but answered only after the
// mailer gave up (a replay of a batch's key answers at once, from the
// fake's record, as Resend's would). With outbox.Options.MaxAttempts 1, a timeout that counted as an
// attempt would move the message aside at once; a retry under a new key
// would send it twice. Neither happens: every message is sent once, none
// is dead, and the retries carried the first call's key.
func TestLateAnswers(t *testing.T) {
	for _, mode := range []struct {
		name   string
		single bool
	}{{"batch", false}, {"one per call", true}} {
		eachKind(t, func(t *testing.T, k kind) {
			t.Run(mode.name, func(t *testing.T) {
				dsn := k.dsn(t)
				prefix := newTables(t, k, dsn)
				fake := resendtest.NewServer()
				t.Cleanup(fake.Close)
				fake.SetRateLimit(2, time.Second)
				var calls atomic.Int64
				fake.SetHook(func(resendtest.Request) resendtest.Fault {
					if calls.Add(1) <= 3 {
						return resendtest.Fault{Late: time.Minute} // until the client gives up
					}
					return resendtest.Fault{}
				})
				const n = 5
				mailer, err := newMailer(fake.URL+"/", 300*time.Millisecond, mode.single)
				if err != nil {
					t.Fatal(err)
				}
				clock := resettest.NewClock(time.Now())
				in := instance(t, newStore(t, k, dsn, prefix), seedUsers(n), mailer, outbox.Options{MaxAttempts: 1},
					func(c *reset.Config) { c.Now = clock.Now })
				enqueue(t, in, n)
				for round := 0; ; round++ {
					if _, err := in.Outbox.Drain(t.Context()); err != nil {
						t.Fatal(err)
					}
					r, err := in.Outbox.Report(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					if r.Dead != 0 {
						t.Fatalf("round %d: %d messages moved aside", round, r.Dead)
					}
					if r.Pending == 0 {
						break
					}
					if round == 50 {
						t.Fatalf("still %d pending after %d rounds", r.Pending, round)
					}
					clock.Advance(15 * time.Minute) // every retry is due by then
				}
				onceEach(t, fake, n)
				keys, late := map[string]int{}, 0
				for _, r := range fake.Requests() {
					keys[r.IdempotencyKey]++
					if r.Abandoned {
						late++
					}
				}
				if got := len(fake.Requests()); late == 0 || got <= late {
					t.Fatalf("%d requests, %d of them answered late: want at least one late answer and a retry", got, late)
				}
				if !mode.single && len(keys) != 1 {
					t.Fatalf("the batch went out under %d keys, want its first key only: %v", len(keys), keys)
				}
				if dead, err := in.Outbox.Dead(t.Context(), 10); err != nil || len(dead) != 0 {
					t.Fatalf("Dead = %d, %v", len(dead), err)
				}
			})
		})
	}
}

// A worker whose send takes longer than its lease keeps its claim: the
// heartbeat renews the lease while the provider holds the request, so
// another worker (another pool, as another instance) claims nothing for
// three whole leases, and the message is sent once.
//
// The observation window is wall time on purpose: the property is that
// time passing beyond the lease changes nothing. A heartbeat held up for
// more than two thirds of the lease (Lease/3 between renewals) would fail
// it; with a 2-second lease that is a stall of over a second.
func TestHeartbeatKeepsClaim(t *testing.T) {
	eachKind(t, func(t *testing.T, k kind) {
		t.Parallel()
		heartbeatKeepsClaim(t, k)
	})
}

func heartbeatKeepsClaim(t *testing.T, k kind) {
	dsn := k.dsn(t)
	prefix := newTables(t, k, dsn)
	fake := resendtest.NewServer()
	t.Cleanup(fake.Close)
	arrived, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	fake.SetHook(func(resendtest.Request) resendtest.Fault {
		if calls.Add(1) == 1 {
			close(arrived)
			<-release // the provider holds the request
		}
		return resendtest.Fault{}
	})
	mailer, err := newMailer(fake.URL+"/", time.Minute, false)
	if err != nil {
		t.Fatal(err)
	}
	const lease = 2 * time.Second
	in := instance(t, newStore(t, k, dsn, prefix), seedUsers(1), mailer, outbox.Options{Lease: lease}, nil)
	enqueue(t, in, 1)

	done := make(chan error, 1)
	go func() { _, err := in.Outbox.Drain(context.Background()); done <- err }()
	select {
	case <-arrived:
	case err := <-done:
		t.Fatalf("Drain ended before sending: %v", err)
	}
	other := newStore(t, k, dsn, prefix)
	tick := time.NewTicker(lease / 10)
	defer tick.Stop()
	for end := time.Now().Add(3 * lease); time.Now().Before(end); <-tick.C {
		now := time.Now()
		got, err := other.Claim(t.Context(), "other", now, now.Add(lease), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			close(release)
			t.Fatalf("another worker claimed %d envelopes while the first was sending", len(got))
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	onceEach(t, fake, 1)
	if r, err := in.Outbox.Report(t.Context()); err != nil || r.Pending != 0 || in.Sent() != 1 {
		t.Fatalf("report %+v, %v; %d sent, want 1", r, err, in.Sent())
	}
}
