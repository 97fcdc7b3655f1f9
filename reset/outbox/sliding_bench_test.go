package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// BenchmarkSlidingWindow drains queued reset emails with three instances
// (three Services and outboxes sharing one memstore, each with its own
// resendmailer) against resendtest enforcing Resend's 2 calls a second in
// a sliding one-second window that counts refused calls. It reports the
// calls, the share answered 429 and the drain time. Run it with
// -benchtime=1x.
func BenchmarkSlidingWindow(b *testing.B) {
	for _, tc := range []struct {
		name  string
		users int
		batch int // 0: the mailer's MaxBatch
	}{
		{"300users-batches", 300, 0},
		{"60users-one-per-call", 60, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				srv := resendtest.NewServer()
				srv.SetSlidingRateLimit(2, time.Second)
				store := memstore.New()
				users := &resettest.Users{}
				var obs []*outbox.Outbox
				var svcs []*reset.Service
				for range 3 {
					m, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey,
						From: "Acme <security@acme.example>", BaseURL: srv.URL})
					if err != nil {
						b.Fatal(err)
					}
					ob, err := outbox.New(store, outbox.Options{Keys: []outbox.SealKey{testKey}, Batch: tc.batch})
					if err != nil {
						b.Fatal(err)
					}
					svc, err := reset.New(reset.Config{KeepSessions: true, Store: store, Users: users, Mailer: m, Queue: ob, Cooldown: -1,
						ResetURL: "https://app.example.com/r", Logger: slog.New(slog.DiscardHandler)})
					if err != nil {
						b.Fatal(err)
					}
					obs, svcs = append(obs, ob), append(svcs, svc)
				}
				for i := range tc.users {
					addr := fmt.Sprintf("r%d@anywhere.com", i)
					users.Add(fmt.Sprint("r", i), addr, oldPass)
					if err := svcs[i%3].Request(context.Background(), addr, ""); err != nil {
						b.Fatal(err)
					}
				}
				start := time.Now()
				var wg sync.WaitGroup
				for _, ob := range obs {
					wg.Go(func() { ob.Drain(context.Background()) })
				}
				wg.Wait()
				took := time.Since(start)
				st := srv.Stats()
				if n := len(srv.Emails()); n != tc.users {
					b.Fatalf("%d emails for %d users", n, tc.users)
				}
				b.ReportMetric(float64(st.Calls), "calls")
				b.ReportMetric(100*float64(st.RateLimited)/float64(max(st.Calls, 1)), "%429")
				b.ReportMetric(took.Seconds(), "drain-s")
				srv.Close()
			}
		})
	}
}
