package reset

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Service runs the reset flow. It is safe for concurrent use. Create one
// with [New] and stop it with [Service.Shutdown].
type Service struct {
	cfg       Config
	resetBase linkBase
	rules     []linkRule
	render    *renderer
	log       *slog.Logger
	cool      Cooldowner
	queue     *queue    // in-process delivery, when durable is nil
	durable   *durable  // the Store's outbox, when Config.Outbox is set
	rand      io.Reader // Config.Rand, or nil for crypto/rand
	closed    atomic.Bool
}

// New checks cfg and returns a Service. Without cfg.Outbox it starts
// cfg.Workers delivery goroutines, which [Service.Shutdown] stops; with it,
// it starts none (see [Service.RunOutbox]). The error names every missing
// or invalid setting.
func New(cfg Config) (*Service, error) {
	var problems []string
	if cfg.Store == nil {
		problems = append(problems, "Store is required")
	}
	if cfg.Users == nil {
		problems = append(problems, "Users is required")
	}
	if cfg.Mailer == nil {
		problems = append(problems, "Mailer is required")
	}
	var resetURL *url.URL
	if cfg.ResetURL == "" {
		problems = append(problems, "ResetURL is required")
	} else if u, err := url.Parse(cfg.ResetURL); err != nil {
		problems = append(problems, fmt.Sprintf("ResetURL: %v", err))
	} else if err := checkLinkShape(u); err != nil {
		problems = append(problems, fmt.Sprintf("ResetURL %q: %v", cfg.ResetURL, err))
	} else {
		resetURL = u
	}
	var rules []linkRule
	for _, s := range cfg.AllowedLinks {
		r, err := parseLinkRule(s)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		rules = append(rules, r)
	}
	switch {
	case cfg.TokenTTL < 0:
		problems = append(problems, "TokenTTL must not be negative")
	case cfg.TokenTTL == 0:
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.QueueSize < 0 || cfg.Workers < 0 || cfg.SendTimeout < 0 {
		problems = append(problems, "QueueSize, Workers and SendTimeout must not be negative")
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.Product == "" && resetURL != nil {
		cfg.Product = resetURL.Hostname()
	}
	if strings.ContainsAny(cfg.Product, "\r\n") {
		problems = append(problems, "Product must not contain a line break")
	}
	rend, err := newRenderer(cfg.Product, humanDuration(cfg.TokenTTL), cfg.Templates)
	if err != nil {
		problems = append(problems, err.Error())
	}
	userRand := cfg.Rand
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	var dur *durable
	if cfg.Outbox != nil && cfg.Store != nil {
		var p []string
		dur, p = setupOutbox(&cfg)
		problems = append(problems, p...)
	}
	if len(problems) > 0 {
		return nil, errors.New("reset: invalid Config: " + strings.Join(problems, "; "))
	}
	if cfg.PasswordPolicy == nil {
		cfg.PasswordPolicy = DefaultPasswordPolicy
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{
		cfg:       cfg,
		resetBase: newLinkBase(resetURL),
		rules:     rules,
		render:    rend,
		rand:      userRand,
		log:       cfg.Logger.With("component", "passreset"),
	}
	if c, ok := cfg.Store.(Cooldowner); ok {
		s.cool = c
	} else {
		s.cool = &memCooldown{until: map[Hash]time.Time{}}
	}
	if dur != nil {
		s.durable = dur
	} else {
		s.queue = newQueue(cfg.QueueSize, cfg.Workers, s.runJob)
	}
	return s, nil
}

// now returns the current time in UTC.
func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

func (s *Service) emit(e Event) {
	if s.cfg.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	s.cfg.OnEvent(e)
}

// TokenTTL returns the lifetime of new tokens.
func (s *Service) TokenTTL() time.Duration { return s.cfg.TokenTTL }

// Request describes one password-lost request.
type Request struct {
	// Email is the address typed by the person; required.
	Email string
	// Link, if set, is the base of the reset link instead of
	// Config.ResetURL. It must match Config.AllowedLinks.
	Link string
	// SkipSend issues the token and returns the link without sending mail
	// (PingOne's skipSend "enabled").
	SkipSend bool
	// Throttle applies the per-address cooldown: while it runs the request
	// changes nothing and returns ErrThrottled.
	Throttle bool
	// Wait sends the email before returning and reports the Mailer's error,
	// instead of queueing it.
	Wait bool
}

// Issued is what a successful [Service.Request] returns.
type Issued struct {
	UserID    string    // the account
	Link      string    // the reset link, carrying the token
	ExpiresAt time.Time // when the token stops working
	MessageID string    // the queued or sent email's ID; empty with SkipSend
}

// Request is PingOne's password-lost for a trusted caller. For a known
// account it issues a new token, making every older token of the user
// invalid in the same atomic step, and unless r.SkipSend queues (or, with
// r.Wait, sends) the reset email to the account's own address. It returns
// an [*InputError] for bad input, an error wrapping [ErrUnknownUser] when
// no account has the address, [ErrThrottled] (with r.Throttle),
// [ErrQueueFull], or a back end's error; in each of those cases no token
// was issued.
//
// With the durable outbox, the email is queued after the token is issued:
// if queueing fails (ErrQueueFull, or the store's error), Request returns
// the error with the Issued link, and the older link no longer works.
//
// Request reveals whether an account exists and takes longer when one
// does: use [Service.RequestPublic] for requests from the public.
func (s *Service) Request(ctx context.Context, r Request) (Issued, error) {
	base, err := s.checkRequest(r.Email, r.Link)
	if err != nil {
		return Issued{}, err
	}
	var slot bool
	if !r.SkipSend && !r.Wait && s.durable == nil {
		if err := s.queue.reserve(); err != nil {
			return Issued{}, err
		}
		slot = true
	}
	iss, msg, err := s.issueWithID(ctx, "", r.Email, base, !r.SkipSend, r.Throttle)
	if err != nil {
		if slot {
			s.queue.cancel()
		}
		return Issued{}, err
	}
	switch {
	case r.SkipSend:
	case r.Wait:
		if err := s.deliver(ctx, msg); err != nil {
			return iss, err
		}
	case s.durable != nil:
		if err := s.enqueueMessage(ctx, msg, r.Link); err != nil {
			return iss, err
		}
	default:
		s.queue.put(job{msg: msg})
	}
	return iss, nil
}

// RequestPublic is password-lost for a request from the public. It checks
// the input and queues the rest of the work (account lookup, cooldown,
// token issue, email) for a background worker, so its result and its
// timing are the same whether or not the address has an account, and
// whether or not the cooldown runs. It returns nil, an [*InputError],
// [ErrQueueFull] or [ErrClosed]; it never returns a link.
func (s *Service) RequestPublic(ctx context.Context, email, link string) error {
	if _, err := s.checkRequest(email, link); err != nil {
		return err
	}
	if s.durable != nil {
		id, err := s.newID()
		if err != nil {
			return err
		}
		return s.enqueue(ctx, Envelope{ID: id, Kind: EnvelopeRequest, Email: email, Link: link})
	}
	if err := s.queue.reserve(); err != nil {
		return err
	}
	s.queue.put(job{public: true, email: email, link: link})
	return nil
}

// checkRequest validates the input of a request and returns the link base.
func (s *Service) checkRequest(email, link string) (linkBase, error) {
	if err := CheckEmail(email); err != nil {
		return linkBase{}, err
	}
	if link == "" {
		return s.resetBase, nil
	}
	u, err := s.parseLink(link)
	if err != nil {
		return linkBase{}, err
	}
	return newLinkBase(u), nil
}

// issueWithID looks the account up, applies the cooldown if asked, rotates
// the token and renders the email with message ID id (random if empty) if
// mail is true.
func (s *Service) issueWithID(ctx context.Context, id, email string, base linkBase, mail, throttle bool) (Issued, Message, error) {
	u, err := s.cfg.Users.LookupEmail(ctx, email)
	if err != nil {
		if errors.Is(err, ErrUnknownUser) {
			s.emit(Event{Kind: EventUnknown})
			return Issued{}, Message{}, fmt.Errorf("reset: request: %w", err)
		}
		return Issued{}, Message{}, fmt.Errorf("reset: looking up user: %w", err)
	}
	if u.ID == "" || (u.Email != email && CheckEmail(u.Email) != nil) {
		return Issued{}, Message{}, fmt.Errorf("reset: Users returned an account without an ID or a valid email address")
	}
	now := s.now()
	if throttle && s.cfg.Cooldown > 0 {
		ok, err := s.cool.Cooldown(ctx, cooldownKey(u.Email), now, now.Add(s.cfg.Cooldown))
		if err != nil {
			return Issued{}, Message{}, fmt.Errorf("reset: cooldown: %w", err)
		}
		if !ok {
			s.emit(Event{Kind: EventThrottled, UserID: u.ID})
			s.log.InfoContext(ctx, "reset request throttled", "user_id", u.ID)
			return Issued{}, Message{}, ErrThrottled
		}
	}
	raw, tok, err := newToken(s.rand)
	if err != nil {
		return Issued{}, Message{}, err
	}
	rec := Record{
		Hash:      hashToken(s.cfg.TokenKey, raw),
		UserID:    u.ID,
		Email:     u.Email,
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.TokenTTL),
	}
	iss := Issued{UserID: u.ID, Link: base.with(tok), ExpiresAt: rec.ExpiresAt}
	var msg Message
	if mail {
		msg, err = s.message(id, KindReset, u.Email, MailData{Link: iss.Link, ExpiresAt: rec.ExpiresAt, Time: now})
		if err != nil {
			return Issued{}, Message{}, err
		}
		iss.MessageID = msg.ID
	}
	if err := s.cfg.Store.Rotate(ctx, rec); err != nil {
		return Issued{}, Message{}, fmt.Errorf("reset: storing token: %w", err)
	}
	s.emit(Event{Kind: EventRequested, UserID: u.ID, MessageID: msg.ID, MailKind: msg.Kind})
	if s.log.Enabled(ctx, slog.LevelInfo) { // spares boxing the arguments
		s.log.InfoContext(ctx, "reset token issued", "user_id", u.ID, "expires_at", rec.ExpiresAt)
	}
	return iss, msg, nil
}

// cooldownKey is the key of an address's cooldown; the address is not stored.
func cooldownKey(email string) Hash {
	return sha256.Sum256([]byte("passreset/cooldown\x00" + strings.ToLower(email)))
}

// newID returns a random identifier for a message.
func (s *Service) newID() (string, error) {
	var id [16]byte
	if _, err := io.ReadFull(s.cfg.Rand, id[:]); err != nil {
		return "", fmt.Errorf("reset: reading randomness: %w", err)
	}
	return hex.EncodeToString(id[:]), nil
}

// message renders one email with the given ID, or a new one if id is empty.
func (s *Service) message(id, kind, to string, d MailData) (Message, error) {
	if strings.ContainsAny(to, "\r\n") {
		return Message{}, fmt.Errorf("reset: recipient contains a line break")
	}
	if id == "" {
		var err error
		if id, err = s.newID(); err != nil {
			return Message{}, err
		}
	}
	d.Product, d.Email = s.cfg.Product, to
	d.ExpiresIn = humanDuration(s.cfg.TokenTTL)
	subj, text, html, err := s.render.render(kind, d)
	if err != nil {
		return Message{}, err
	}
	return Message{ID: id, Kind: kind, To: to, Subject: subj, Text: text, HTML: html}, nil
}

// deliver sends msg now, bounded by Config.SendTimeout.
func (s *Service) deliver(ctx context.Context, msg Message) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	if err := s.cfg.Mailer.Send(ctx, msg); err != nil {
		s.emit(Event{Kind: EventSendFailed, MessageID: msg.ID, MailKind: msg.Kind, Err: err})
		s.log.ErrorContext(ctx, "sending email failed", "message_id", msg.ID, "kind", msg.Kind, "to", redact(msg.To), "err", err)
		return fmt.Errorf("reset: sending %s email: %w", msg.Kind, err)
	}
	s.emit(Event{Kind: EventSent, MessageID: msg.ID, MailKind: msg.Kind})
	s.log.InfoContext(ctx, "email sent", "message_id", msg.ID, "kind", msg.Kind, "to", redact(msg.To))
	return nil
}

// runJob carries out one queued job on a worker.
func (s *Service) runJob(ctx context.Context, j job) {
	if !j.public {
		s.deliver(ctx, j.msg)
		return
	}
	base, err := s.checkRequest(j.email, j.link)
	if err != nil { // checked when queued; cannot happen
		return
	}
	_, msg, err := s.issueWithID(ctx, "", j.email, base, true, true)
	switch {
	case err == nil:
		s.deliver(ctx, msg)
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrThrottled):
	default:
		s.emit(Event{Kind: EventFailed, Err: err})
		s.log.ErrorContext(ctx, "public reset request failed", "to", redact(j.email), "err", err)
	}
}

// TokenInfo is what [Service.Inspect] tells about a valid token.
type TokenInfo struct {
	UserID    string
	Email     string // the address the link was sent to
	ExpiresAt time.Time
}

// Inspect reports whom token belongs to and when it expires, without
// consuming it. It returns an error wrapping [ErrInvalidToken] for a
// malformed, unknown, used or replaced token, [ErrExpiredToken] for an
// expired one, or a back end's error.
func (s *Service) Inspect(ctx context.Context, token string) (TokenInfo, error) {
	h, err := s.hash(token)
	if err != nil {
		return TokenInfo{}, err
	}
	rec, err := s.cfg.Store.Lookup(ctx, h)
	if err := s.judge(rec, h, err); err != nil {
		return TokenInfo{}, err
	}
	return TokenInfo{UserID: rec.UserID, Email: rec.Email, ExpiresAt: rec.ExpiresAt}, nil
}

func (s *Service) hash(token string) (Hash, error) {
	raw, err := ParseToken(token)
	if err != nil {
		s.emit(Event{Kind: EventInvalid})
		return Hash{}, err
	}
	return hashToken(s.cfg.TokenKey, raw), nil
}

// judge turns a store answer for hash h into the token's verdict.
func (s *Service) judge(rec Record, h Hash, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		s.emit(Event{Kind: EventInvalid})
		return fmt.Errorf("%w: unknown, used or replaced", ErrInvalidToken)
	case err != nil:
		return fmt.Errorf("reset: reading token: %w", err)
	case !equalHash(rec.Hash, h):
		// A Store that returns another record is broken; refuse rather
		// than trust it.
		s.emit(Event{Kind: EventInvalid})
		return fmt.Errorf("%w: store returned a different record", ErrInvalidToken)
	case !s.now().Before(rec.ExpiresAt):
		s.emit(Event{Kind: EventExpired, UserID: rec.UserID})
		return ErrExpiredToken
	}
	return nil
}

// Completion is the input of [Service.Complete].
type Completion struct {
	Token    string // the confirmation token from the link; required
	Password string // the new password; required
	// UserID, if set, must be the token's user; otherwise the token is
	// refused as invalid and left unused.
	UserID string
}

// Complete sets a new password with a token. It checks the password policy
// first (a [*PasswordError], token untouched), then consumes the token
// atomically, so that of many concurrent calls with one token exactly one
// succeeds. It then sets the password through Users, revokes every other
// token of the user, runs Config.AfterReset and queues the "password
// changed" notice. It never creates a session: the caller must not log the
// user in. It returns the user's ID.
//
// Errors: a [*PasswordError], an error wrapping [ErrInvalidToken] or
// [ErrExpiredToken], or a back end's error. When Users fails to set the
// password, the token is put back so that the same link can be used again.
func (s *Service) Complete(ctx context.Context, c Completion) (string, error) {
	if c.Token == "" {
		return "", &InputError{Field: "confirmationToken", Reason: "is required", Err: ErrInvalidToken}
	}
	h, err := s.hash(c.Token)
	if err != nil {
		return "", err
	}
	if err := s.cfg.PasswordPolicy(c.Password); err != nil {
		return "", err
	}
	if c.UserID != "" {
		rec, err := s.cfg.Store.Lookup(ctx, h)
		if err := s.judge(rec, h, err); err != nil {
			return "", err
		}
		if rec.UserID != c.UserID {
			s.emit(Event{Kind: EventInvalid})
			return "", fmt.Errorf("%w: belongs to another user", ErrInvalidToken)
		}
	}
	rec, err := s.cfg.Store.Consume(ctx, h)
	if err := s.judge(rec, h, err); err != nil {
		return "", err
	}
	if err := s.cfg.Users.SetPassword(ctx, rec.UserID, c.Password); err != nil {
		// Put the token back so the person can try again with the same
		// link. Rotate would replace a token issued in between; that only
		// makes the person ask for a new link.
		if rerr := s.cfg.Store.Rotate(context.WithoutCancel(ctx), rec); rerr != nil {
			s.log.ErrorContext(ctx, "restoring token after failed password change", "user_id", rec.UserID, "err", rerr)
		}
		return "", fmt.Errorf("reset: setting password: %w", err)
	}
	// From here on the password is changed: failures are logged, not
	// returned, so that the person is not told to retry with a used link.
	if err := s.cfg.Store.RevokeAll(ctx, rec.UserID); err != nil {
		s.emit(Event{Kind: EventFailed, UserID: rec.UserID, Err: err})
		s.log.ErrorContext(ctx, "revoking tokens after reset", "user_id", rec.UserID, "err", err)
	}
	s.emit(Event{Kind: EventCompleted, UserID: rec.UserID})
	s.log.InfoContext(ctx, "password reset completed", "user_id", rec.UserID)
	if s.cfg.AfterReset != nil {
		if err := s.cfg.AfterReset(ctx, rec.UserID); err != nil {
			s.emit(Event{Kind: EventAfterResetFailed, UserID: rec.UserID, Err: err})
			s.log.ErrorContext(ctx, "after-reset hook failed", "user_id", rec.UserID, "err", err)
		}
	}
	if !s.cfg.DisableChangedNotice {
		s.notifyChanged(ctx, rec)
	}
	return rec.UserID, nil
}

func (s *Service) notifyChanged(ctx context.Context, rec Record) {
	msg, err := s.message("", KindChanged, rec.Email, MailData{Time: s.now()})
	if err == nil && s.durable != nil {
		err = s.enqueueMessage(ctx, msg, "")
		if err == nil {
			return
		}
	} else if err == nil {
		err = s.queue.reserve()
	}
	if err != nil {
		s.emit(Event{Kind: EventSendFailed, UserID: rec.UserID, MailKind: KindChanged, Err: err})
		s.log.ErrorContext(ctx, "queueing password-changed notice", "user_id", rec.UserID, "err", err)
		return
	}
	s.queue.put(job{msg: msg})
}

// RevokeAll makes every outstanding token of userID invalid, for example
// after the password was changed by other means.
func (s *Service) RevokeAll(ctx context.Context, userID string) error {
	if userID == "" {
		return &InputError{Field: "userID", Reason: "is required"}
	}
	if err := s.cfg.Store.RevokeAll(ctx, userID); err != nil {
		return fmt.Errorf("reset: revoking tokens: %w", err)
	}
	s.emit(Event{Kind: EventRevoked, UserID: userID})
	return nil
}

// Prune removes expired records if the Store implements [Pruner], and
// returns how many it removed. Run it periodically.
func (s *Service) Prune(ctx context.Context) (int, error) {
	p, ok := s.cfg.Store.(Pruner)
	if !ok {
		return 0, nil
	}
	n, err := p.Prune(ctx, s.now())
	if err != nil {
		return n, fmt.Errorf("reset: pruning: %w", err)
	}
	return n, nil
}

// Shutdown stops accepting work and waits until the in-process queue's
// work is done or ctx ends, whichever is first. Later requests that need
// the queue fail with [ErrClosed]. With the durable outbox nothing is held
// in process: Shutdown only refuses new work (stop [Service.RunOutbox]
// through its context). It is safe to call more than once.
func (s *Service) Shutdown(ctx context.Context) error {
	s.closed.Store(true)
	if s.queue == nil {
		return nil
	}
	return s.queue.shutdown(ctx)
}

// memCooldown is the process-local cooldown used when the Store has none.
type memCooldown struct {
	mu    sync.Mutex
	until map[Hash]time.Time
	sweep time.Time
}

func (m *memCooldown) Cooldown(_ context.Context, key Hash, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.sweep) {
		for k, t := range m.until {
			if !now.Before(t) {
				delete(m.until, k)
			}
		}
		m.sweep = now.Add(time.Minute)
	}
	if t, ok := m.until[key]; ok && now.Before(t) {
		return false, nil
	}
	m.until[key] = until
	return true, nil
}
