package redact

import (
	"errors"
	"strings"
	"testing"
)

func TestError(t *testing.T) {
	base := errors.New("base")
	for _, s := range []string{
		"550 5.1.1 <jborder@anywhere.com>: Recipient address rejected",
		`{"message":"Invalid to: jborder@anywhere.com"}`,
		"to=jborder@anywhere.com, (j.b+tag@sub.anywhere.com)",
		"mailto:jborder@anywhere.com",
	} {
		err := Error(&wrapped{s, base})
		if strings.Contains(err.Error(), "jborder@") || strings.Contains(err.Error(), "j.b+tag@") {
			t.Errorf("Error(%q) = %q: an address is left", s, err)
		}
		if !strings.Contains(err.Error(), "@anywhere.com") && !strings.Contains(err.Error(), "@sub.anywhere.com") {
			t.Errorf("Error(%q) = %q: the domain is gone", s, err)
		}
		if !errors.Is(err, base) {
			t.Errorf("Error(%q) lost its cause", s)
		}
	}
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

type wrapped struct {
	s   string
	err error
}

func (w *wrapped) Error() string { return w.s }
func (w *wrapped) Unwrap() error { return w.err }
