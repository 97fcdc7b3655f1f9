package outbox_test

import (
	"context"
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// A public request for a suppressed address is answered as any other and
// then dropped by the outbox: nothing sent, nothing failed, nothing left.
func TestSuppressedPublicRequestDropped(t *testing.T) {
	e := newEnv(t, func(c *reset.Config, _ *outbox.Options) {
		c.Suppressed = func(_ context.Context, email string) (bool, error) { return email == userEmail, nil }
	})
	for _, addr := range []string{userEmail, "second@anywhere.com"} {
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatalf("Request(%s): %v", addr, err)
		}
	}
	if n := e.drain(t); n != 2 {
		t.Fatalf("drained %d, want 2", n)
	}
	got := e.mailer.delivered()
	if len(got) != 1 || got[0].To != "second@anywhere.com" {
		t.Fatalf("delivered %+v, want one mail, to the address that is not suppressed", got)
	}
	if r := e.report(t); r.Pending != 0 || r.Dead != 0 || e.events.count(reset.EventFailed) != 0 {
		t.Fatalf("Report = %+v, %d failures: the suppressed request must be dropped", r, e.events.count(reset.EventFailed))
	}
}
