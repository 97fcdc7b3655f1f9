package sqlretry

import (
	"context"
	"errors"
	"testing"
	"time"
)

var (
	errTransient = errors.New("transient")
	errOther     = errors.New("other")
	errFinal     = errors.New("final")
)

func classify(err error) (Verdict, error) {
	switch {
	case errors.Is(err, errTransient):
		return Retry, err
	case errors.Is(err, errFinal):
		return Final, errors.New("reported: " + err.Error())
	}
	return Fail, err
}

// run returns how many times f ran and Do's error, f failing with the
// errors of errs in turn, then succeeding.
func run(ctx context.Context, attempts int, errs ...error) (int, error) {
	n := 0
	err := Do(ctx, attempts, time.Microsecond, time.Microsecond, classify, func() error {
		n++
		if n <= len(errs) {
			return errs[n-1]
		}
		return nil
	})
	return n, err
}

func TestDo(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		attempts int
		errs     []error
		want     string // "" for success
		tries    int
	}{
		{"success", 3, nil, "", 1},
		{"retried", 3, []error{errTransient, errTransient}, "", 3},
		{"out of attempts", 3, []error{errTransient, errTransient, errTransient}, "gave up after 3 attempts: transient", 3},
		{"one attempt", 1, []error{errTransient}, "transient", 1},
		{"not transient", 3, []error{errOther}, "other", 1},
		{"not transient after a retry", 3, []error{errTransient, errOther}, "gave up after 2 attempts: other", 2},
		{"final after a retry", 3, []error{errTransient, errFinal}, "reported: final", 2},
	} {
		tries, err := run(ctx, c.attempts, c.errs...)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q (\"\" for success)", c.name, got, c.want)
		}
		if tries != c.tries {
			t.Errorf("%s: %d tries, want %d", c.name, tries, c.tries)
		}
	}
	// The last error stays reachable with errors.Is.
	if _, err := run(ctx, 2, errTransient, errTransient); !errors.Is(err, errTransient) {
		t.Errorf("%v does not wrap the last error", err)
	}
}

// TestDoContext: a context that ends stops the waits; the error says so
// and keeps the error that was being retried.
func TestDoContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Do(ctx, 100, time.Hour, time.Hour, classify, func() error {
		n++
		cancel()
		return errTransient
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) || n != 1 {
		t.Fatalf("Do = %v after %d tries; want context.Canceled wrapping the transient error, after 1", err, n)
	}
}
