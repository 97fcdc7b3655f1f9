package resendmailer_test

import (
	"testing"

	"golang.org/x/time/rate"

	"github.com/passreset/passreset/mailer/resendmailer"
)

// ProviderRate advertises the Mailer's pacing as the account's limit, so
// that a durable outbox shares it across instances; rate.Inf advertises
// none.
func TestProviderRate(t *testing.T) {
	for _, tc := range []struct {
		rate      rate.Limit
		burst     int
		wantRate  float64
		wantBurst int
	}{
		{0, 0, 2, 1},
		{10, 5, 10, 5},
		{rate.Inf, 0, 0, 0},
	} {
		m, err := resendmailer.New(resendmailer.Options{APIKey: "re_x", From: "a@example.com", Rate: tc.rate, Burst: tc.burst})
		if err != nil {
			t.Fatal(err)
		}
		if r, b := m.ProviderRate(); r != tc.wantRate || b != tc.wantBurst {
			t.Errorf("Rate %v Burst %d: ProviderRate() = %v, %d; want %v, %d", tc.rate, tc.burst, r, b, tc.wantRate, tc.wantBurst)
		}
	}
}
