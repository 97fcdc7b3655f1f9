package resettest

import (
	"context"
	"errors"
	"testing"

	"github.com/passreset/passreset/reset"
)

// testSecondFactor: an account with a second factor completes a reset
// only with its code; no code and wrong codes change nothing until the
// MaxSecondFactorFailures-th wrong code uses the token up; other
// sessions end unless the person keeps them.
func testSecondFactor(t *testing.T, s reset.Store, u func(string) string) {
	users, clock := &Users{}, NewClock(base)
	id, email := u("2fa"), u("2fa")+"@example.com"
	users.Add(id, email, "old password")
	users.SetSecondFactor(id, "123456")
	svc, err := reset.New(reset.Config{
		Store: s, Users: struct {
			reset.Users
			reset.SecondFactor
		}{users, users.Factor()},
		Mailer: &Mailer{}, Now: clock.Now,
		ResetURL:    "https://app.example.com/reset",
		Logger:      discardLogger,
		EndSessions: users.EndSessions,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	issue := func() string {
		t.Helper()
		iss, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: email, SkipSend: true})
		if err != nil {
			t.Fatalf("Request: %v", err)
		}
		return Token(iss.Link)
	}
	tok := issue()
	info, err := svc.Inspect(ctx(t), tok)
	if err != nil || !info.SecondFactor {
		t.Fatalf("Inspect = %+v, %v; want SecondFactor", info, err)
	}
	_, err = svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "violet harbour lantern 1"})
	if ie, ok := errors.AsType[*reset.InputError](err); !ok || ie.Field != "secondFactorCode" || !ie.Missing || !errors.Is(err, reset.ErrSecondFactorRequired) {
		t.Fatalf("Complete without a code: %v, want an InputError for secondFactorCode wrapping ErrSecondFactorRequired", err)
	}
	for i := 1; i < reset.MaxSecondFactorFailures; i++ {
		_, err = svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "violet harbour lantern 1", SecondFactorCode: "654321"})
		if ie, ok := errors.AsType[*reset.InputError](err); !ok || ie.Field != "secondFactorCode" || !errors.Is(err, reset.ErrSecondFactorInvalid) {
			t.Fatalf("wrong code %d: %v, want an InputError wrapping ErrSecondFactorInvalid", i, err)
		}
		if _, err := svc.Inspect(ctx(t), tok); err != nil {
			t.Fatalf("Inspect after wrong code %d: %v; the token must keep working", i, err)
		}
	}
	if got := users.Password(id); got != "old password" || users.Ended(id) != 0 {
		t.Fatalf("after refused completions: password %q, %d session ends; want nothing changed", got, users.Ended(id))
	}
	_, err = svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "violet harbour lantern 1", SecondFactorCode: "654321"})
	if !errors.Is(err, reset.ErrInvalidToken) {
		t.Fatalf("wrong code %d: %v, want ErrInvalidToken (used up)", reset.MaxSecondFactorFailures, err)
	}
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "violet harbour lantern 1", SecondFactorCode: "123456"}); !errors.Is(err, reset.ErrInvalidToken) {
		t.Fatalf("right code on a used-up token: %v, want ErrInvalidToken", err)
	}
	if got := users.Password(id); got != "old password" {
		t.Fatalf("password %q after a used-up token", got)
	}

	tok = issue()
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "violet harbour lantern 1", SecondFactorCode: "123456"}); err != nil {
		t.Fatalf("Complete with the right code: %v", err)
	}
	if got := users.Password(id); got != "violet harbour lantern 1" || users.Ended(id) != 1 {
		t.Fatalf("after completion: password %q, %d session ends; want the new one and 1", got, users.Ended(id))
	}
	tok = issue()
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "amber meadow compass 22", SecondFactorCode: "123456", KeepSessions: true}); err != nil {
		t.Fatalf("Complete keeping sessions: %v", err)
	}
	if users.Ended(id) != 1 {
		t.Fatalf("KeepSessions: EndSessions ran %d times, want still 1", users.Ended(id))
	}

	// Without a second factor: no code asked for, any code ignored.
	users.SetSecondFactor(id, "")
	tok = issue()
	if info, err := svc.Inspect(ctx(t), tok); err != nil || info.SecondFactor {
		t.Fatalf("Inspect without a second factor = %+v, %v", info, err)
	}
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "cobalt river thistle 333"}); err != nil {
		t.Fatalf("Complete without a second factor: %v", err)
	}
	if users.Ended(id) != 2 {
		t.Fatalf("EndSessions ran %d times, want 2", users.Ended(id))
	}
}
