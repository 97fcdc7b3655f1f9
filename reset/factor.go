package reset

import (
	"sync"
	"time"
)

// MaxSecondFactorFailures is how many wrong second-factor codes one token
// takes: the last of them uses the token up (see [Service.Complete]).
// Wrong codes are counted by the Service, in process memory, per token.
const MaxSecondFactorFailures = 5

// strikes counts wrong second-factor codes by token. Its zero value is
// ready to use.
type strikes struct {
	mu sync.Mutex
	m  map[Hash]strike
}

// strike is one token's count, kept until the token expires.
type strike struct {
	n       int
	expires time.Time
}

// add counts one wrong code for h, a token that expires at expires, and
// returns the count. It forgets the counts of expired tokens.
func (s *strikes) add(h Hash, expires, now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[Hash]strike{}
	}
	for k, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	st := s.m[h]
	st.n++
	st.expires = expires
	s.m[h] = st
	return st.n
}

// forget drops h's count.
func (s *strikes) forget(h Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, h)
}
