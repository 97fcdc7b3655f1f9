package smtpmailer_test

import (
	"sync/atomic"
	"testing"

	"github.com/passreset/passreset/mailer/smtpmailer"
)

// BenchmarkMailpit sends reset emails to Mailpit on loopback, in plain
// text and with STARTTLS (and AUTH), one after another and from four
// concurrent senders, and reports messages per second. Run it with
//
//	eval "$(scripts/mailpit.sh start | grep '^export ')"
//	go test -run '^$' -bench Mailpit -benchtime 2s -count 3 ./mailer/smtpmailer/
func BenchmarkMailpit(b *testing.B) {
	link := "https://app.example.com/auth/reset?token=" + newID() + newID()
	report := func(b *testing.B, n int64) {
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	}
	for _, setup := range []struct {
		name string
		new  func(b *testing.B) *smtpmailer.Mailer
	}{
		{"plain", func(b *testing.B) *smtpmailer.Mailer { return newMailer(b, plainMailpit(b), smtpmailer.Options{}) }},
		{"starttls", func(b *testing.B) *smtpmailer.Mailer {
			user, pass := mailpitAuth(b)
			return newMailer(b, startTLSMailpit(b), smtpmailer.Options{TLSConfig: mailpitTLS(b), Username: user, Password: pass})
		}},
	} {
		b.Run(setup.name+"/serial", func(b *testing.B) {
			m := setup.new(b)
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
		b.Run(setup.name+"/parallel4", func(b *testing.B) {
			m := setup.new(b)
			to := recipient("bench")
			var n atomic.Int64
			b.SetParallelism(2) // 2×GOMAXPROCS(2) = 4 senders
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
}
