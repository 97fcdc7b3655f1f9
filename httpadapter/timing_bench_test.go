package httpadapter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// BenchmarkEnumeration measures what an enumerator sees: public
// password-lost requests over loopback HTTP, each for a new address, known
// and unknown interleaved in random order, with a mailer that takes 20 ms.
// It reports the known/unknown ratio of the median and of the 90th
// percentile of the answers' latency (goal: within 1.05 either way), for
// the in-process queue and for the durable outbox with its workers running.
// Run with enough samples for stable percentiles:
//
//	go test -run '^$' -bench Enumeration -benchtime 2000x ./httpadapter/
func BenchmarkEnumeration(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := "queue"
		if durable {
			name = "outbox"
		}
		b.Run(name, func(b *testing.B) { benchEnumeration(b, durable) })
	}
}

func benchEnumeration(b *testing.B, durable bool) {
	users := &resettest.Users{}
	mailer := resettest.MailerFunc(func(ctx context.Context, _ reset.Message) error {
		select {
		case <-time.After(20 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	cfg := reset.Config{
		KeepSessions: true,
		Store:        memstore.New(), Users: users, Mailer: mailer,
		ResetURL: "https://app.example.com/reset", Logger: slog.New(slog.DiscardHandler),
		QueueSize: 1 << 16, Workers: 8,
	}
	var ob *outbox.Outbox
	if durable {
		var err error
		ob, err = outbox.New(cfg.Store.(outbox.Store), outbox.Options{Keys: []outbox.SealKey{{ID: "k", Key: bytes.Repeat([]byte{1}, 32)}},
			Workers: 8, MaxPending: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Queue = ob
	}
	svc, err := reset.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if durable {
			ob.Run(ctx)
		}
	}()
	defer func() { cancel(); <-done; svc.Shutdown(context.Background()) }()
	h, err := httpadapter.New(svc, httpadapter.Options{RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()

	ask := func(email string) time.Duration {
		body := `{"email": "` + email + `"}`
		start := time.Now()
		resp, err := client.Post(srv.URL+httpadapter.PasswordLostPath, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d: %s", resp.StatusCode, buf.String())
		}
		return d
	}
	var known, unknown []time.Duration
	i := 0
	for b.Loop() {
		i++
		k := fmt.Sprintf("user%d@anywhere.com", i)
		users.Add(fmt.Sprint(i), k, "x")
		u := fmt.Sprintf("nobody%d@anywhere.com", i)
		if rand.N(2) == 0 {
			known = append(known, ask(k))
			unknown = append(unknown, ask(u))
		} else {
			unknown = append(unknown, ask(u))
			known = append(known, ask(k))
		}
	}
	pct := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))])
	}
	b.ReportMetric(pct(known, 0.5)/pct(unknown, 0.5), "p50-known/unknown")
	b.ReportMetric(pct(known, 0.9)/pct(unknown, 0.9), "p90-known/unknown")
	b.ReportMetric(pct(unknown, 0.5)/1e3, "p50-unknown-µs")
}
