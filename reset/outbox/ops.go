package outbox

import (
	"context"
	"errors"
	"time"
)

// BudgetReader is an optional [Store] capability for operators' tools: it
// reads the provider budget named key without reserving a call. It
// returns the budget's theoretical arrival time (see [Store.Reserve]): no
// call starts before tat - (burst-1)*interval, so a tat well after now is
// a pause that a rate-limit answer set (see [Store.Pause]). It returns the
// zero time for a budget never used.
type BudgetReader interface {
	Budget(ctx context.Context, key string) (tat time.Time, err error)
}

// ErrNoBudgetReader is what [ReadBudget] returns for a Store that does not
// implement [BudgetReader]. Check it with [errors.Is].
var ErrNoBudgetReader = errors.New("outbox: the store cannot read its budget without reserving (it does not implement outbox.BudgetReader)")

// ReadBudget reads the provider budget named key ("" means the default,
// "mail") from store, without the seal key and without reserving.
func ReadBudget(ctx context.Context, store Store, key string) (time.Time, error) {
	br, ok := store.(BudgetReader)
	if !ok {
		return time.Time{}, ErrNoBudgetReader
	}
	if key == "" {
		key = "mail"
	}
	return br.Budget(ctx, key)
}

// Recipients opens e with keys and returns the addresses it names: a
// request's typed address (and its email's recipient once rendered), a
// message's recipient, or the recipients of a batch's members, in order
// and without repeats. It is for an operator who holds the seal key and
// asks to see them; everything else about the outbox works without it.
func Recipients(keys []SealKey, e Envelope) ([]string, error) {
	s, err := newSealer(keys)
	if err != nil {
		return nil, err
	}
	c, err := s.open(e.ID, e.KeyID, e.Sealed)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	var add func(c content)
	add = func(c content) {
		for _, a := range []string{c.Email, msgTo(c)} {
			if a != "" && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
		for _, m := range c.Members {
			add(m.Content)
		}
	}
	add(c)
	return out, nil
}

func msgTo(c content) string {
	if c.Msg == nil {
		return ""
	}
	return c.Msg.To
}
