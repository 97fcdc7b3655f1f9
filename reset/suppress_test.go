package reset_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/passreset/passreset/reset"
)

// suppressions is a Config.Suppressed for tests: a set of addresses.
type suppressions struct {
	mu    sync.Mutex
	held  map[string]bool
	asked []string
	err   error
}

func (s *suppressions) set(email string, held bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = map[string]bool{}
	}
	s.held[strings.ToLower(email)] = held
}

func (s *suppressions) Suppressed(_ context.Context, email string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, email)
	return s.held[strings.ToLower(email)], s.err
}

func TestSuppressedPublicRequest(t *testing.T) {
	sup := &suppressions{}
	sup.set(userEmail, true)
	e := newEnv(t, func(c *reset.Config) { c.Suppressed = sup.Suppressed })
	// The public answer is the same as for any address.
	if err := e.svc.Request(t.Context(), strings.ToUpper(userEmail), ""); err != nil {
		t.Fatalf("Request of a suppressed address: %v", err)
	}
	msg, err := e.svc.CarryOut(t.Context(), reset.PublicRequest{ID: "r1", Email: userEmail})
	if !errors.Is(err, reset.ErrSuppressed) {
		t.Fatalf("CarryOut of a suppressed address = %v, %v; want ErrSuppressed", msg.ID, err)
	}
	if err := e.svc.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.mailer.Messages()); n != 0 {
		t.Fatalf("%d emails sent to a suppressed address", n)
	}
	if e.events.count(reset.EventRequested) != 0 || e.events.count(reset.EventFailed) != 0 {
		t.Errorf("events for a suppressed address: %+v", e.events.ev)
	}
	// The account's own address is asked about, not the typed one.
	sup.mu.Lock()
	asked := sup.asked
	sup.mu.Unlock()
	if len(asked) != 2 || asked[0] != userEmail || asked[1] != userEmail {
		t.Errorf("Suppressed was asked about %q, want the account's address twice", asked)
	}
}

func TestSuppressedSpendsNoCooldown(t *testing.T) {
	sup := &suppressions{}
	sup.set(userEmail, true)
	e := newEnv(t, func(c *reset.Config) { c.Suppressed = sup.Suppressed })
	if _, err := e.svc.CarryOut(t.Context(), reset.PublicRequest{ID: "r1", Email: userEmail}); !errors.Is(err, reset.ErrSuppressed) {
		t.Fatalf("CarryOut = %v, want ErrSuppressed", err)
	}
	// Cleared: the next request goes out at once, no cooldown was spent.
	sup.set(userEmail, false)
	msg, err := e.svc.CarryOut(t.Context(), reset.PublicRequest{ID: "r2", Email: userEmail})
	if err != nil {
		t.Fatalf("CarryOut after clearing: %v", err)
	}
	if msg.To != userEmail || msg.Kind != reset.KindReset {
		t.Errorf("message %+v", msg)
	}
}

func TestSuppressedTrustedRequest(t *testing.T) {
	sup := &suppressions{}
	sup.set(userEmail, true)
	e := newEnv(t, func(c *reset.Config) { c.Suppressed = sup.Suppressed })
	first := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	for _, r := range []reset.TrustedRequest{{Email: userEmail}, {Email: userEmail, Wait: true}} {
		iss, err := e.svc.RequestTrusted(t.Context(), r)
		if !errors.Is(err, reset.ErrSuppressed) || iss.Link != "" {
			t.Fatalf("RequestTrusted(%+v) = %+v, %v; want ErrSuppressed and no link", r, iss, err)
		}
	}
	// Nothing changed: the link issued without mail still works.
	if _, err := e.svc.Inspect(t.Context(), token(first.Link)); err != nil {
		t.Errorf("a suppressed request replaced the token: %v", err)
	}
	if err := e.svc.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.mailer.Messages()); n != 0 {
		t.Errorf("%d emails sent to a suppressed address", n)
	}
}

func TestSuppressedError(t *testing.T) {
	sup := &suppressions{err: errors.New("feedback store down")}
	e := newEnv(t, func(c *reset.Config) { c.Suppressed = sup.Suppressed })
	_, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, Wait: true})
	if err == nil || errors.Is(err, reset.ErrSuppressed) || !strings.Contains(err.Error(), "feedback store down") {
		t.Fatalf("RequestTrusted with a failing Suppressed = %v, want its error", err)
	}
	if n := len(e.mailer.Messages()); n != 0 {
		t.Errorf("%d emails sent", n)
	}
}
