package smtpmailer_test

import (
	"sync/atomic"
	"testing"

	"github.com/passreset/passreset/mailer/smtpmailer"
)

// BenchmarkMailpit sends reset emails to Mailpit on loopback, one after
// another through one connection, then from 4×GOMAXPROCS concurrent
// senders through a pool of 4, and reports messages per second. Run it with
//
//	eval "$(scripts/mailpit.sh start | grep '^export ')"
//	go test -run '^$' -bench Mailpit -benchtime 3s -count 5 ./mailer/smtpmailer/
func BenchmarkMailpit(b *testing.B) {
	mp := plainMailpit(b)
	link := "https://app.example.com/auth/reset?token=" + newID() + newID()
	report := func(b *testing.B, n int64) {
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	}
	b.Run("conns=1", func(b *testing.B) {
		m := newMailer(b, mp, smtpmailer.Options{MaxConns: 1})
		to := recipient("bench")
		var n int64
		for b.Loop() {
			if err := m.Send(background(b), testMessage(to, link)); err != nil {
				b.Fatal(err)
			}
			n++
		}
		report(b, n)
	})
	b.Run("conns=4", func(b *testing.B) {
		m := newMailer(b, mp, smtpmailer.Options{MaxConns: 4})
		to := recipient("bench")
		var n atomic.Int64
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := m.Send(background(b), testMessage(to, link)); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		})
		report(b, n.Load())
	})
}
