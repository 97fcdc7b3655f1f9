// Package resettest provides what tests of code built on package reset
// need: a conformance suite that any [reset.Store] runs with one call, a
// recording mailer, in-memory users and a fake clock.
package resettest

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/passreset/passreset/reset"
)

// Clock is a fake clock for [reset.Config.Now]. Its zero value reads
// 2026-01-01T00:00:00Z. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a Clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = epoch
	}
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.Now()
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Mailer records every message it is given. Its zero value is ready to
// use; set Err to make Send fail. It is safe for concurrent use.
type Mailer struct {
	mu   sync.Mutex
	msgs []reset.Message
	sent chan struct{}
	// Err, when set, is returned by Send, which then records nothing.
	Err error
}

var _ reset.Mailer = (*Mailer)(nil)

// MailerFunc adapts an ordinary function to the [reset.Mailer]
// interface, for a test that decides each send itself.
type MailerFunc func(ctx context.Context, msg reset.Message) error

// Send calls f(ctx, msg).
func (f MailerFunc) Send(ctx context.Context, msg reset.Message) error { return f(ctx, msg) }

// Send records msg.
func (m *Mailer) Send(ctx context.Context, msg reset.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	m.msgs = append(m.msgs, msg)
	if m.sent != nil {
		select {
		case m.sent <- struct{}{}:
		default:
		}
	}
	return nil
}

// SetErr sets the error Send returns, safely while sends run.
func (m *Mailer) SetErr(err error) {
	m.mu.Lock()
	m.Err = err
	m.mu.Unlock()
}

// Messages returns a copy of what was sent so far.
func (m *Mailer) Messages() []reset.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]reset.Message(nil), m.msgs...)
}

// Wait blocks until at least n messages have been recorded or ctx ends,
// and returns the messages.
func (m *Mailer) Wait(ctx context.Context, n int) ([]reset.Message, error) {
	m.mu.Lock()
	if m.sent == nil {
		m.sent = make(chan struct{}, 1)
	}
	ch := m.sent
	m.mu.Unlock()
	for {
		if msgs := m.Messages(); len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return m.Messages(), fmt.Errorf("resettest: waiting for %d messages: %w", n, ctx.Err())
		}
	}
}

// Users is an in-memory [reset.Users]. Addresses match case-insensitively.
// Passwords are kept as given, for tests to read back: never use it
// outside tests. Its zero value is ready to use; it is safe for concurrent
// use.
type Users struct {
	mu       sync.Mutex
	byEmail  map[string]reset.User
	password map[string]string
	factor   map[string]string // second-factor code by user ID
	ended    map[string]int    // EndSessions calls by user ID
	// Err, when set, is returned by every method.
	Err error
}

var (
	_ reset.Users        = (*Users)(nil)
	_ reset.UsersByID    = (*Users)(nil)
	_ reset.SecondFactor = factor{}
)

// SetSecondFactor gives the account id a second factor whose one valid
// code is code; an empty code removes it. Users itself is no
// [reset.SecondFactor]; [Users.Factor] is.
func (u *Users) SetSecondFactor(id, code string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.factor == nil {
		u.factor = map[string]string{}
	}
	if code == "" {
		delete(u.factor, id)
		return
	}
	u.factor[id] = code
}

// Factor returns the [reset.SecondFactor] of u's accounts, to set beside
// u: Users: struct{ reset.Users; reset.SecondFactor }{u, u.Factor()}.
func (u *Users) Factor() reset.SecondFactor { return factor{u} }

// factor is the second factor of a Users' accounts.
type factor struct{ u *Users }

func (f factor) HasSecondFactor(ctx context.Context, id string) (bool, error) {
	u := f.u
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.Err != nil {
		return false, u.Err
	}
	_, ok := u.factor[id]
	return ok, nil
}

// VerifySecondFactor accepts the code given to SetSecondFactor.
func (f factor) VerifySecondFactor(ctx context.Context, id, code string) (bool, error) {
	u := f.u
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.Err != nil {
		return false, u.Err
	}
	want, ok := u.factor[id]
	return ok && subtle.ConstantTimeCompare([]byte(code), []byte(want)) == 1, nil
}

// EndSessions counts a call for id; it is a [reset.Config.EndSessions].
func (u *Users) EndSessions(ctx context.Context, id string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.Err != nil {
		return u.Err
	}
	if u.ended == nil {
		u.ended = map[string]int{}
	}
	u.ended[id]++
	return nil
}

// Ended returns how many times EndSessions ran for id.
func (u *Users) Ended(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ended[id]
}

// Add creates or replaces an account.
func (u *Users) Add(id, email, password string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byEmail == nil {
		u.byEmail, u.password = map[string]reset.User{}, map[string]string{}
	}
	u.byEmail[strings.ToLower(email)] = reset.User{ID: id, Email: email}
	u.password[id] = password
}

// SetLocale sets the language (a BCP 47 tag) of the account with email,
// which LookupEmail then returns as User.Locale.
func (u *Users) SetLocale(email, locale string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if usr, ok := u.byEmail[strings.ToLower(email)]; ok {
		usr.Locale = locale
		u.byEmail[strings.ToLower(email)] = usr
	}
}

// SetStamp sets the credential stamp of the account with email, which
// LookupEmail and LookupID then return as User.Stamp: what an application
// does when the password changes by other means.
func (u *Users) SetStamp(email, stamp string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if usr, ok := u.byEmail[strings.ToLower(email)]; ok {
		usr.Stamp = stamp
		u.byEmail[strings.ToLower(email)] = usr
	}
}

// LookupID implements [reset.UsersByID].
func (u *Users) LookupID(ctx context.Context, id string) (reset.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.Err != nil {
		return reset.User{}, u.Err
	}
	for _, usr := range u.byEmail {
		if usr.ID == id {
			return usr, nil
		}
	}
	return reset.User{}, reset.ErrUnknownUser
}

// SetErr sets the error every method returns, safely while calls run.
func (u *Users) SetErr(err error) {
	u.mu.Lock()
	u.Err = err
	u.mu.Unlock()
}

// LookupEmail implements [reset.Users].
func (u *Users) LookupEmail(ctx context.Context, email string) (reset.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.Err != nil {
		return reset.User{}, u.Err
	}
	usr, ok := u.byEmail[strings.ToLower(email)]
	if !ok {
		return reset.User{}, reset.ErrUnknownUser
	}
	return usr, nil
}

// SetPassword implements [reset.Users].
func (u *Users) SetPassword(ctx context.Context, id, password string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.Err != nil {
		return u.Err
	}
	if _, ok := u.password[id]; !ok {
		return fmt.Errorf("resettest: no user %q", id)
	}
	u.password[id] = password
	return nil
}

// Password returns the current password of id.
func (u *Users) Password(id string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.password[id]
}

// Token returns the value of the "token" query parameter in the first
// line of text that contains "token=", for reading a link out of an email.
func Token(text string) string {
	i := strings.Index(text, "token=")
	if i < 0 {
		return ""
	}
	t := text[i+len("token="):]
	if j := strings.IndexAny(t, "&\"'<> \r\n"); j >= 0 {
		t = t[:j]
	}
	return t
}

var discardLogger = slog.New(slog.DiscardHandler)
