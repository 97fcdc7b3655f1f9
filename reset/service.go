package reset

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passreset/passreset/internal/backoff"
	"github.com/passreset/passreset/internal/i18n"
	"github.com/passreset/passreset/internal/link"
	"github.com/passreset/passreset/internal/quota"
	"github.com/passreset/passreset/internal/redact"
	"github.com/passreset/passreset/reset/password"
)

// Service runs the reset flow. It is safe for concurrent use. Create one
// with [New] and stop it with [Service.Shutdown].
type Service struct {
	cfg       Config
	resetBase link.Base
	rules     []link.Rule
	render    *renderer
	log       *slog.Logger
	cool      Cooldowner
	quota     Quota     // the Store's when it has one and cool is the Store, or in memory
	queue     Queue     // Config.Queue, or mem
	mem       *memQueue // the in-process queue, when Config.Queue is nil
	rand      io.Reader // Config.Rand, or nil for crypto/rand
	closed    atomic.Bool
	dropped   atomic.Int64 // public requests dropped for a full queue

	secretMu sync.Mutex
	secret   []byte // keys the cooldowns; fetched from cool on first use

	factor        SecondFactor // Config.Users' capability, or nil
	strikes       strikes      // wrong second-factor codes by token
	host          string       // the host of Config.ResetURL, a context word for passwords
	defaultPolicy bool         // Config.PasswordPolicy was nil
}

// New checks cfg and returns a Service, attached to cfg.Queue. Without
// cfg.Queue it starts the in-process queue's cfg.Workers goroutines,
// which [Service.Shutdown] stops. The error names every missing or
// invalid setting.
func New(cfg Config) (*Service, error) {
	var problems []string
	if cfg.Store == nil {
		problems = append(problems, "Store is required")
	}
	switch u := cfg.Users.(type) {
	case nil:
		problems = append(problems, "Users is required")
	case UsersFuncs:
		if u.Lookup == nil || u.Set == nil {
			problems = append(problems, "Users: UsersFuncs needs both Lookup and Set")
		}
	case *UsersFuncs:
		if u == nil || u.Lookup == nil || u.Set == nil {
			problems = append(problems, "Users: UsersFuncs needs both Lookup and Set")
		}
	}
	if cfg.Mailer == nil {
		problems = append(problems, "Mailer is required")
	}
	if cfg.EndSessions == nil && !cfg.KeepSessions {
		problems = append(problems, "EndSessions is required to end the user's other sessions after a reset; set KeepSessions: true if the application keeps them")
	}
	var resetURL *url.URL
	if cfg.ResetURL == "" {
		problems = append(problems, "ResetURL is required")
	} else if u, err := url.Parse(cfg.ResetURL); err != nil {
		problems = append(problems, fmt.Sprintf("ResetURL: %v", err))
	} else if err := link.CheckShape(u); err != nil {
		problems = append(problems, fmt.Sprintf("ResetURL %q: %v", cfg.ResetURL, err))
	} else {
		resetURL = u
	}
	var rules []link.Rule
	for _, s := range cfg.AllowedLinks {
		r, err := link.ParseRule(s)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		rules = append(rules, r)
	}
	if cfg.TokenTTL < 0 || cfg.QueueSize < 0 || cfg.Workers < 0 || cfg.AfterResetTimeout < 0 {
		problems = append(problems, "TokenTTL, QueueSize, Workers and AfterResetTimeout must not be negative")
	}
	if cfg.MaxInviteLifetime < 0 {
		problems = append(problems, "MaxInviteLifetime must not be negative")
	}
	cfg.MaxInviteLifetime = cmp.Or(cfg.MaxInviteLifetime, defaultMaxInviteLifetime)
	if cfg.DailyLimit > quota.MaxLimit {
		problems = append(problems, fmt.Sprintf("DailyLimit must be at most %d", quota.MaxLimit))
	}
	cfg.TokenTTL = cmp.Or(cfg.TokenTTL, defaultTokenTTL)
	cfg.Cooldown = cmp.Or(cfg.Cooldown, defaultCooldown)
	cfg.DailyLimit = cmp.Or(cfg.DailyLimit, defaultDailyLimit)
	cfg.AfterResetTimeout = cmp.Or(cfg.AfterResetTimeout, defaultAfterReset)
	cfg.QueueSize = cmp.Or(cfg.QueueSize, defaultQueueSize)
	cfg.Workers = cmp.Or(cfg.Workers, defaultWorkers)
	if cfg.Product == "" && resetURL != nil {
		cfg.Product = resetURL.Hostname()
	}
	if strings.ContainsAny(cfg.Product, "\r\n") {
		problems = append(problems, "Product must not contain a line break")
	}
	rend, err := newRenderer(cfg.Product, cfg.TokenTTL, cfg.Templates)
	if err != nil {
		problems = append(problems, err.Error())
	}
	userRand := cfg.Rand
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if len(problems) > 0 {
		return nil, errors.New("reset: invalid Config: " + strings.Join(problems, "; "))
	}
	defaultPolicy := cfg.PasswordPolicy == nil
	if defaultPolicy {
		cfg.PasswordPolicy = password.DefaultPolicy
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	s := &Service{
		cfg:       cfg,
		resetBase: link.NewBase(resetURL),
		rules:     rules,
		render:    rend,
		rand:      userRand,
		log:       cfg.Logger.With("component", "passreset"),

		defaultPolicy: defaultPolicy,
	}
	if resetURL != nil {
		s.host = resetURL.Hostname()
	}
	s.factor, _ = cfg.Users.(SecondFactor)
	if c, ok := cfg.Store.(Cooldowner); ok {
		s.cool = c
	} else {
		s.cool = &memCooldown{until: map[Hash]cooling{}, secret: []byte(rand.Text() + rand.Text())[:32]}
	}
	_, shared := cfg.Store.(Cooldowner)
	if q, ok := cfg.Store.(Quota); ok && shared {
		s.quota = q
	} else {
		s.quota = &memQuota{uses: map[Hash][]quota.Use{}}
	}
	s.queue = cfg.Queue
	if s.queue == nil {
		s.mem = newMemQueue(cfg.QueueSize, cfg.Workers)
		s.queue = s.mem
	}
	err = s.queue.Attach(Delivery{Service: s, Mailer: cfg.Mailer, Logger: s.log, Emit: s.emit, Now: s.now, Trace: cfg.Trace})
	if err != nil {
		return nil, fmt.Errorf("reset: invalid Config: Queue: %w", err)
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

// Config returns the configuration the Service runs with, for adapters
// that work beside it (the product name, the logger, the token lifetime,
// the texts of [Templates.Messages], whether EndSessions is set): the
// Config given to [New] with every default filled in. It is a copy:
// changing it changes nothing in the Service.
func (s *Service) Config() Config {
	c := s.cfg
	c.AllowedLinks = slices.Clone(c.AllowedLinks)
	c.TokenKey = slices.Clone(c.TokenKey)
	var t Templates
	if c.Templates != nil {
		t = *c.Templates
	}
	t.Messages = i18n.Clone(s.render.changes)
	c.Templates = &t
	return c
}

// CheckPassword applies [Config.PasswordPolicy] and then
// [Config.BreachedPasswords] to c.Password for the account c names
// (UserID and Email, from [Service.Inspect]), so that a form can refuse a
// password before the token is used; it sets c's Product, Host and
// MultiFactor from the Config. It returns nil, the policy's error (a
// [*password.Error] for the default policy), a [*password.Error] of Code
// [password.Breached], or the BreachChecker's error wrapped.
func (s *Service) CheckPassword(ctx context.Context, c password.Check) error {
	c.Product, c.Host, c.MultiFactor = s.cfg.Product, s.host, s.cfg.MultiFactor
	if err := s.cfg.PasswordPolicy(ctx, c); err != nil {
		return err
	}
	if s.cfg.BreachedPasswords == nil {
		return nil
	}
	breached, err := s.cfg.BreachedPasswords.Breached(ctx, c.Password)
	if err != nil {
		return fmt.Errorf("reset: checking for a breached password: %w", err)
	}
	if breached {
		return &password.Error{Code: password.Breached, Reason: "has appeared in a data breach, so attackers try it: choose another"}
	}
	return nil
}

// MinPasswordLength returns the shortest password, in characters, that
// the policy can accept, for a form's hint: [password.Min] or
// [password.MinMultiFactor] under the default policy; for a custom
// policy what [password.MinLength] finds.
func (s *Service) MinPasswordLength() int {
	switch {
	case !s.defaultPolicy:
		return password.MinLength(s.cfg.PasswordPolicy, password.Check{Product: s.cfg.Product, Host: s.host, MultiFactor: s.cfg.MultiFactor})
	case s.cfg.MultiFactor:
		return password.MinMultiFactor
	}
	return password.Min
}

// Request is PingOne's password-lost for a request from the public, and
// the call to make with input from a form or a public API. It checks the
// input and hands the rest (account lookup, cooldown, token issue, email)
// to the queue, so that its result and its timing are the same whether or
// not the address has an account and whether or not the cooldown runs. It
// returns nil, an [*InputError] (nothing changed), [ErrClosed], or the
// queue's error when it cannot take the request (a durable queue's
// database is down). It never returns a link.
//
// When the queue is full the request is dropped: it is counted, logged
// and reported as [EventDropped], and Request still returns nil, because
// an answer that changed with the backlog would tell the public how much
// mail the addresses it tried caused.
func (s *Service) Request(ctx context.Context, email, link string) error {
	if _, err := s.checkRequest(email, link); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if s.queue.Full() {
		s.drop1(ctx)
		return nil
	}
	// The request's ID is no secret and comes from crypto/rand whatever
	// Config.Rand is: it names the queued work, not a token.
	return s.queue.Put(ctx, Job{Request: &PublicRequest{ID: rand.Text(), Email: email, Link: link}, Trace: s.cfg.Trace.fields(ctx)})
}

// drop1 counts and reports a public request dropped for lack of room.
func (s *Service) drop1(ctx context.Context) {
	n := s.dropped.Add(1)
	s.emit(Event{Kind: EventDropped})
	s.log.WarnContext(ctx, "public reset request dropped: the delivery queue is full", "dropped_total", n)
}

// TrustedRequest describes one password-lost request from a trusted
// caller (see [Service.RequestTrusted]).
type TrustedRequest struct {
	// Email is the address of the account; required.
	Email string
	// Link, if set, is the base of the reset link instead of
	// Config.ResetURL. It must match Config.AllowedLinks.
	Link string
	// SkipSend issues the token and returns the link without sending mail
	// (PingOne's skipSend "enabled").
	SkipSend bool
	// Throttle applies the per-address cooldown and daily limit
	// ([Config.DailyLimit]): while either holds the request back it
	// changes nothing and returns ErrThrottled.
	Throttle bool
	// Wait sends the email before returning and reports the Mailer's error,
	// instead of queueing it.
	Wait bool
	// Purpose is what the link is for: [PurposeReset] (the reset email
	// and page) or [PurposeInvite] (the invitation email and page).
	// Default: PurposeReset.
	Purpose Purpose
	// Lifetime is how long the link works, at least one minute and at
	// most the purpose's maximum: [Config.TokenTTL] for a reset,
	// [Config.MaxInviteLifetime] for an invitation. A longer one is
	// refused with an [*InputError] for "lifetime", not cut. Default:
	// the purpose's maximum.
	Lifetime time.Duration
}

// Issued is what a successful [Service.RequestTrusted] returns.
type Issued struct {
	UserID    string    // the account
	Link      string    // the reset link, carrying the token
	ExpiresAt time.Time // when the token stops working
	MessageID string    // the queued or sent email's ID; empty with SkipSend
}

// RequestTrusted is PingOne's password-lost for a trusted caller (an
// administrator, a support tool, a server of your own). It reveals whether
// an account exists and takes longer when one does: never call it with
// input from the public; use [Service.Request] for that.
//
// For a known account it issues a new token for r.Purpose that works for
// r.Lifetime, making every older token of the user (of either purpose)
// invalid in the same atomic step, and unless r.SkipSend queues (or, with
// r.Wait, sends) the reset or invitation email to the account's own
// address. It returns an [*InputError] for bad input (a lifetime longer
// than the purpose allows included), an error wrapping
// [ErrUnknownUser] when no account has the address, [ErrThrottled] (with
// r.Throttle), [ErrSuppressed] (unless r.SkipSend: see
// [Config.Suppressed]), [ErrQueueFull], [ErrClosed] or a back end's error; in each
// of those cases no token was issued and the user's older link still
// works.
//
// Two failures can come after the token was issued, and then
// RequestTrusted returns the error together with the Issued link: with
// r.Wait, the Mailer's error (one attempt, made at once); otherwise a
// queue that fails to take the email right after the token was stored
// (a durable queue's database went down).
func (s *Service) RequestTrusted(ctx context.Context, r TrustedRequest) (Issued, error) {
	base, err := s.checkRequest(r.Email, r.Link)
	if err != nil {
		return Issued{}, err
	}
	purpose, ttl, err := s.lifetime(r.Purpose, r.Lifetime)
	if err != nil {
		return Issued{}, err
	}
	if s.closed.Load() {
		return Issued{}, ErrClosed
	}
	if !r.SkipSend && !r.Wait && s.queue.Full() {
		return Issued{}, ErrQueueFull
	}
	iss, msg, err := s.issue(ctx, r.Email, "", base, grant{purpose, ttl}, !r.SkipSend, r.Throttle)
	if err != nil {
		return Issued{}, err
	}
	switch {
	case r.SkipSend:
	case r.Wait:
		if err := s.deliver(ctx, msg); err != nil {
			return iss, err
		}
	case purpose == PurposeInvite:
		// Queued as an email, not as a request: a queue that gives up
		// on a request and revives it later carries it out again as a
		// public request, which would mail a reset link instead. The
		// invitation's own link outlives a revival in most cases; when
		// it has expired, the application sends a new invitation.
		if err := s.queue.Put(ctx, Job{Message: &msg, Trace: s.cfg.Trace.fields(ctx)}); err != nil {
			return iss, fmt.Errorf("reset: queueing the email: %w", err)
		}
	default:
		req := &PublicRequest{ID: msg.ID, Email: r.Email, Link: r.Link, SkipCooldown: true}
		if err := s.queue.Put(ctx, Job{Request: req, Message: &msg, Trace: s.cfg.Trace.fields(ctx)}); err != nil {
			return iss, fmt.Errorf("reset: queueing the email: %w", err)
		}
	}
	return iss, nil
}

// checkRequest validates the input of a request and returns the link base.
func (s *Service) checkRequest(email, raw string) (link.Base, error) {
	if err := checkEmail(email); err != nil {
		return link.Base{}, err
	}
	if raw == "" {
		return s.resetBase, nil
	}
	u, err := s.parseLink(raw)
	if err != nil {
		return link.Base{}, err
	}
	return link.NewBase(u), nil
}

// grant is what a token is issued for: its purpose and its lifetime.
type grant struct {
	purpose Purpose
	ttl     time.Duration
}

// issue looks the account up, applies the cooldown if asked (owned by
// owner: see [Cooldowner]), renders the email of g's purpose with a new
// message ID if mail is true, and rotates the token.
func (s *Service) issue(ctx context.Context, email, owner string, base link.Base, g grant, mail, throttle bool) (Issued, Message, error) {
	u, err := s.cfg.Users.LookupEmail(ctx, email)
	if err != nil {
		if errors.Is(err, ErrUnknownUser) {
			s.emit(Event{Kind: EventUnknown})
			return Issued{}, Message{}, fmt.Errorf("reset: request: %w", err)
		}
		if errors.Is(err, sql.ErrNoRows) || errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(ctx, "Users.LookupEmail returned a not-found error other than reset.ErrUnknownUser; return (or wrap) reset.ErrUnknownUser for an address with no account", "err", err)
		}
		return Issued{}, Message{}, fmt.Errorf("reset: looking up user: %w", err)
	}
	if u.ID == "" || (u.Email != email && checkEmail(u.Email) != nil) {
		return Issued{}, Message{}, fmt.Errorf("reset: Users returned an account without an ID or a valid email address")
	}
	if mail && s.cfg.Suppressed != nil {
		held, err := s.cfg.Suppressed(ctx, u.Email)
		if err != nil {
			return Issued{}, Message{}, fmt.Errorf("reset: suppression check: %w", err)
		}
		if held {
			s.log.InfoContext(ctx, "reset email suppressed: the address bounced or complained", "user_id", u.ID)
			return Issued{}, Message{}, fmt.Errorf("reset: request: %w", ErrSuppressed)
		}
	}
	now := s.now()
	if throttle && s.cfg.Cooldown > 0 {
		key, err := s.addressKey(ctx, "passreset/cooldown", u.Email)
		if err != nil {
			return Issued{}, Message{}, err
		}
		ok, err := s.cool.Cooldown(ctx, key, owner, now, now.Add(s.cfg.Cooldown))
		if err != nil {
			return Issued{}, Message{}, fmt.Errorf("reset: cooldown: %w", err)
		}
		if !ok {
			s.emit(Event{Kind: EventThrottled, UserID: u.ID})
			s.log.InfoContext(ctx, "reset request throttled", "user_id", u.ID)
			return Issued{}, Message{}, ErrThrottled
		}
	}
	if throttle {
		ok, err := s.spend(ctx, u.Email, owner, now)
		if err != nil {
			return Issued{}, Message{}, err
		}
		if !ok {
			s.emit(Event{Kind: EventThrottled, UserID: u.ID})
			s.log.InfoContext(ctx, "reset request throttled: daily limit reached", "user_id", u.ID)
			return Issued{}, Message{}, ErrThrottled
		}
	}
	raw, tok, err := newToken(s.rand)
	if err != nil {
		return Issued{}, Message{}, err
	}
	rec := Record{
		Hash:      hashToken(s.cfg.TokenKey, raw, g.purpose),
		UserID:    u.ID,
		Email:     u.Email,
		CreatedAt: now,
		ExpiresAt: now.Add(g.ttl),
		Stamp:     stampHash(raw, u.Stamp),
	}
	pre, kind := "", KindReset
	if g.purpose == PurposeInvite {
		pre, kind = invitePrefix, KindInvite
	}
	iss := Issued{UserID: u.ID, Link: base.With([]byte(pre + string(tok[:]))), ExpiresAt: rec.ExpiresAt}
	var msg Message
	if mail {
		msg, err = s.message(kind, u.Email, u.Locale, MailData{Link: iss.Link, ExpiresAt: rec.ExpiresAt, Time: now})
		if err != nil {
			return Issued{}, Message{}, err
		}
		iss.MessageID = msg.ID
	}
	if err := s.cfg.Store.Rotate(ctx, rec); err != nil {
		return Issued{}, Message{}, fmt.Errorf("reset: storing token: %w", err)
	}
	s.emit(Event{Kind: EventRequested, UserID: u.ID, MessageID: msg.ID, MailKind: msg.Kind})
	s.log.InfoContext(ctx, "reset token issued", "user_id", u.ID, "purpose", g.purpose, "expires_at", rec.ExpiresAt)
	return iss, msg, nil
}

// addressKey is the key of an address's cooldown or budget (domain
// tells which): HMAC-SHA-256 of the lower-cased address under the
// cooldown secret, never a plain hash, so that whoever reads the store
// cannot check a guessed address against it. The secret is the store's
// ([Cooldowner]), the same for every instance and independent of every
// other key, so that no key rotation changes a key; it is fetched once,
// by the first request that needs it (a queue's worker for public
// requests).
func (s *Service) addressKey(ctx context.Context, domain, email string) (Hash, error) {
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	if s.secret == nil {
		secret, err := s.cool.CooldownSecret(ctx)
		if err != nil {
			return Hash{}, fmt.Errorf("reset: cooldown secret: %w", err)
		}
		if len(secret) != 32 {
			return Hash{}, fmt.Errorf("reset: cooldown secret has %d bytes, want 32", len(secret))
		}
		s.secret = secret
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(domain + "\x00" + strings.ToLower(email)))
	var h Hash
	m.Sum(h[:0])
	return h, nil
}

// newID returns a random identifier for a message.
func (s *Service) newID() (string, error) {
	if s.rand == nil {
		return rand.Text(), nil
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("reset: reading randomness: %w", err)
	}
	return fmt.Sprintf("%x", b), nil
}

// message renders one email with a new ID.
func (s *Service) message(kind, to, locale string, d MailData) (Message, error) {
	if strings.ContainsAny(to, "\r\n") {
		return Message{}, fmt.Errorf("reset: recipient contains a line break")
	}
	id, err := s.newID()
	if err != nil {
		return Message{}, err
	}
	d.Product, d.Email, d.Locale = s.cfg.Product, to, locale
	subj, text, html, err := s.render.render(kind, d)
	if err != nil {
		return Message{}, err
	}
	return Message{ID: id, Kind: kind, To: to, Subject: subj, Text: text, HTML: html}, nil
}

// deliver makes one attempt to send msg now, bounded by sendTimeout. A
// failure is logged here, once.
func (s *Service) deliver(ctx context.Context, msg Message) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	if err := redact.Error(s.cfg.Mailer.Send(ctx, msg)); err != nil {
		s.emit(Event{Kind: EventSendFailed, MessageID: msg.ID, MailKind: msg.Kind, Err: err})
		level := slog.LevelWarn
		if errors.Is(err, ErrPermanent) {
			level = slog.LevelError
		}
		s.log.Log(ctx, level, "sending email failed", "message_id", msg.ID, "kind", msg.Kind, "to", redactAddr(msg.To), "err", err)
		return fmt.Errorf("reset: sending %s email: %w", msg.Kind, err)
	}
	s.emit(Event{Kind: EventSent, MessageID: msg.ID, MailKind: msg.Kind})
	s.log.InfoContext(ctx, "email sent", "message_id", msg.ID, "kind", msg.Kind, "to", redactAddr(msg.To))
	return nil
}

// CarryOut carries out a queued public request, for the [Queue] that
// holds it: it looks the address up, applies the cooldown and the daily
// limit (owned by r.ID, unless r.SkipCooldown), issues a new token (every older token of the
// user stops working) and renders the email, which it returns for the
// queue to send under the Message's ID.
//
// Nothing is to be sent, and the queue drops the request, when the error
// wraps [ErrUnknownUser] (no account), [ErrThrottled] (the cooldown runs,
// or the daily limit is spent), [ErrSuppressed] (the address bounced or
// complained: [Config.Suppressed]) or [ErrInvalidInput] (the caller's link is
// no longer allowed). Any other error is a back end's: the queue may carry
// the request out again later, and it then meets the cooldown and the
// daily limit again, which let it through if it owns them.
func (s *Service) CarryOut(ctx context.Context, r PublicRequest) (Message, error) {
	base, err := s.checkRequest(r.Email, r.Link)
	if err != nil {
		return Message{}, err
	}
	_, msg, err := s.issue(ctx, r.Email, r.ID, base, grant{PurposeReset, s.cfg.TokenTTL}, true, !r.SkipCooldown)
	return msg, err
}

// TokenInfo is what [Service.Inspect] tells about a valid token.
type TokenInfo struct {
	UserID    string
	Email     string // the address the link was sent to
	ExpiresAt time.Time
	// SecondFactor says that completing the reset needs a second-factor
	// code ([Completion.SecondFactorCode]).
	SecondFactor bool
	// Purpose is what the link was issued for: [PurposeReset] or
	// [PurposeInvite], so that a page can speak of an invitation.
	Purpose Purpose
}

// Inspect reports whom token belongs to, what it was issued for, when it
// expires and whether completing it needs a second-factor code, without
// consuming it. It
// returns an error wrapping [ErrInvalidToken] for a malformed, unknown,
// used or replaced token, [ErrExpiredToken] for an expired one, or a back
// end's error.
func (s *Service) Inspect(ctx context.Context, token string) (TokenInfo, error) {
	h, purpose, err := s.hash(token)
	if err != nil {
		return TokenInfo{}, err
	}
	rec, err := s.cfg.Store.Lookup(ctx, h)
	if err := s.judge(rec, h, err); err != nil {
		return TokenInfo{}, err
	}
	if err := s.checkStamp(ctx, token, rec); err != nil {
		return TokenInfo{}, err
	}
	need, err := s.needsFactor(ctx, rec.UserID)
	if err != nil {
		return TokenInfo{}, err
	}
	return TokenInfo{UserID: rec.UserID, Email: rec.Email, ExpiresAt: rec.ExpiresAt, SecondFactor: need, Purpose: purpose}, nil
}

// needsFactor reports whether userID's reset needs a second-factor code.
func (s *Service) needsFactor(ctx context.Context, userID string) (bool, error) {
	if s.factor == nil {
		return false, nil
	}
	need, err := s.factor.HasSecondFactor(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("reset: second factor: %w", err)
	}
	return need, nil
}

// hash returns the stored form of token and the purpose it names; the
// purpose is authentic only once a record with that hash is found.
func (s *Service) hash(token string) (Hash, Purpose, error) {
	raw, p, err := parseToken(token)
	if err != nil {
		s.emit(Event{Kind: EventInvalid})
		return Hash{}, "", err
	}
	return hashToken(s.cfg.TokenKey, raw, p), p, nil
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
	// SecondFactorCode is the account's second-factor code. It is
	// required when the account has a second factor ([SecondFactor],
	// [TokenInfo.SecondFactor]) and ignored otherwise.
	SecondFactorCode string
	// KeepSessions is the person's choice to stay signed in on their other
	// devices: [Config.EndSessions] is then not called. Default false:
	// other sessions end.
	KeepSessions bool
}

// Complete sets a new password with a token. It looks the token up and
// checks the password for the token's account with [Service.CheckPassword]
// first (a [*password.Error], token untouched), then, for an account with a
// second factor, the code: without one it returns an [*InputError]
// wrapping [ErrSecondFactorRequired], with a wrong one an [*InputError]
// wrapping [ErrSecondFactorInvalid], changing nothing but the count of
// wrong codes; the [MaxSecondFactorFailures]th wrong code uses the token
// up, and Complete returns an error wrapping [ErrInvalidToken]. Then it
// consumes the token
// atomically, so that of many concurrent calls with one token exactly one
// succeeds, and sets the password through Users. It never creates a
// session: the caller must not log the user in. It returns the user's ID.
//
// When Users.SetPassword refuses the password with a [*password.Error]
// (say bcrypt's 72-byte limit), Complete returns that error and puts the
// token back, so that the person can choose another password with the
// same link; any other SetPassword error is returned wrapped, the token put
// back too.
//
// Once the password is saved, Complete revokes every other token of the
// user, runs Config.EndSessions (unless c.KeepSessions) and
// Config.AfterReset, and queues the "password changed" notice on
// a context that keeps ctx's values but not its cancellation, bounded by
// Config.AfterResetTimeout: a client that disconnects cannot cut them
// short. Their failures are logged and reported as events, not returned.
//
// Errors: a [*password.Error], an error wrapping [ErrInvalidToken] or
// [ErrExpiredToken], or a back end's error.
func (s *Service) Complete(ctx context.Context, c Completion) (string, error) {
	if c.Token == "" {
		return "", &InputError{Field: "confirmationToken", Reason: "is required", Missing: true, Err: ErrInvalidToken}
	}
	h, _, err := s.hash(c.Token)
	if err != nil {
		return "", err
	}
	looked, err := s.cfg.Store.Lookup(ctx, h)
	if err := s.judge(looked, h, err); err != nil {
		return "", err
	}
	if c.UserID != "" && looked.UserID != c.UserID {
		s.emit(Event{Kind: EventInvalid})
		return "", fmt.Errorf("%w: belongs to another user", ErrInvalidToken)
	}
	if err := s.CheckPassword(ctx, password.Check{Password: c.Password, UserID: looked.UserID, Email: looked.Email}); err != nil {
		return "", err
	}
	if err := s.checkFactor(ctx, looked, c.SecondFactorCode); err != nil {
		return "", err
	}
	rec, err := s.cfg.Store.Consume(ctx, h)
	if err := s.judge(rec, h, err); err != nil {
		return "", err
	}
	if err := s.checkStamp(ctx, c.Token, rec); err != nil {
		// A token whose stamp changed stays used up; after a failing
		// lookup it is put back, as after a failing SetPassword.
		if !errors.Is(err, ErrInvalidToken) {
			if rerr := s.cfg.Store.Rotate(context.WithoutCancel(ctx), rec); rerr != nil {
				s.log.ErrorContext(ctx, "restoring token after failed account lookup", "user_id", rec.UserID, "err", rerr)
			}
		}
		return "", err
	}
	if err := s.cfg.Users.SetPassword(ctx, rec.UserID, c.Password); err != nil {
		// Put the token back so the person can try again with the same
		// link. Rotate would replace a token issued in between; that only
		// makes the person ask for a new link.
		if rerr := s.cfg.Store.Rotate(context.WithoutCancel(ctx), rec); rerr != nil {
			s.log.ErrorContext(ctx, "restoring token after failed password change", "user_id", rec.UserID, "err", rerr)
		}
		if pe, ok := errors.AsType[*password.Error](err); ok {
			return "", pe
		}
		return "", fmt.Errorf("reset: setting password: %w", err)
	}
	// From here on the password is changed: what follows runs to its end
	// whatever happens to the request, and its failures are logged, not
	// returned, so that the person is not told to retry with a used link.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AfterResetTimeout)
	defer cancel()
	if err := s.cfg.Store.RevokeAll(ctx, rec.UserID); err != nil {
		s.emit(Event{Kind: EventFailed, UserID: rec.UserID, Err: err})
		s.log.ErrorContext(ctx, "revoking tokens after reset", "user_id", rec.UserID, "err", err)
	}
	s.strikes.forget(h)
	s.emit(Event{Kind: EventCompleted, UserID: rec.UserID})
	s.log.InfoContext(ctx, "password reset completed", "user_id", rec.UserID)
	if s.cfg.EmailVerified != nil {
		// Opening the link proved control of the mailbox it was sent to,
		// whatever the token's purpose.
		if err := s.cfg.EmailVerified(ctx, rec.UserID, rec.Email); err != nil {
			s.emit(Event{Kind: EventAfterResetFailed, UserID: rec.UserID, Err: fmt.Errorf("reset: EmailVerified: %w", err)})
			s.log.ErrorContext(ctx, "email-verified hook failed", "user_id", rec.UserID, "err", err)
		}
	}
	if s.cfg.EndSessions != nil && !c.KeepSessions {
		if err := s.cfg.EndSessions(ctx, rec.UserID); err != nil {
			s.emit(Event{Kind: EventEndSessionsFailed, UserID: rec.UserID, Err: err})
			s.log.ErrorContext(ctx, "ending sessions after reset", "user_id", rec.UserID, "err", err)
		}
	}
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

// checkFactor checks the second-factor code for rec's user, if the
// account has a second factor. A wrong code counts against the token;
// the MaxSecondFactorFailures-th uses it up.
func (s *Service) checkFactor(ctx context.Context, rec Record, code string) error {
	need, err := s.needsFactor(ctx, rec.UserID)
	if err != nil || !need {
		return err
	}
	if code == "" {
		return &InputError{Field: "secondFactorCode", Reason: "is required", Missing: true, Err: ErrSecondFactorRequired}
	}
	ok, err := s.factor.VerifySecondFactor(ctx, rec.UserID, code)
	if err != nil {
		return fmt.Errorf("reset: second factor: %w", err)
	}
	if ok {
		return nil
	}
	s.emit(Event{Kind: EventSecondFactorFailed, UserID: rec.UserID})
	s.log.WarnContext(ctx, "wrong second-factor code", "user_id", rec.UserID)
	if s.strikes.add(rec.Hash, rec.ExpiresAt, s.now()) < MaxSecondFactorFailures {
		return &InputError{Field: "secondFactorCode", Reason: "is not valid", Err: ErrSecondFactorInvalid}
	}
	if _, err := s.cfg.Store.Consume(ctx, rec.Hash); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("reset: using up token: %w", err)
	}
	s.strikes.forget(rec.Hash)
	s.emit(Event{Kind: EventInvalid, UserID: rec.UserID})
	return fmt.Errorf("%w: too many wrong second-factor codes", ErrInvalidToken)
}

// notifyChanged queues the "password changed" notice. It is never
// dropped: the in-process queue keeps room for notices apart from the
// room requests use, and when a queue cannot take it, the notice is sent
// here and now.
func (s *Service) notifyChanged(ctx context.Context, rec Record) {
	// The notice speaks the account's language: the record keeps no
	// locale, so ask Users once more. A failure only costs the language.
	locale := ""
	if u, err := s.cfg.Users.LookupEmail(ctx, rec.Email); err == nil && u.ID == rec.UserID {
		locale = u.Locale
	}
	msg, err := s.message(KindChanged, rec.Email, locale, MailData{Time: s.now()})
	if err != nil {
		s.emit(Event{Kind: EventSendFailed, UserID: rec.UserID, MailKind: KindChanged, Err: err})
		s.log.ErrorContext(ctx, "rendering password-changed notice", "user_id", rec.UserID, "err", err)
		return
	}
	if err := s.queue.Put(ctx, Job{Message: &msg, Trace: s.cfg.Trace.fields(ctx)}); err != nil {
		s.log.WarnContext(ctx, "queueing password-changed notice failed; sending it now", "user_id", rec.UserID, "err", err)
		s.deliver(ctx, msg)
	}
}

// RevokeAll makes every outstanding token of userID invalid, for example
// after the password was changed by other means.
func (s *Service) RevokeAll(ctx context.Context, userID string) error {
	if userID == "" {
		return &InputError{Field: "userID", Reason: "is required", Missing: true}
	}
	if err := s.cfg.Store.RevokeAll(ctx, userID); err != nil {
		return fmt.Errorf("reset: revoking tokens: %w", err)
	}
	s.emit(Event{Kind: EventRevoked, UserID: userID})
	return nil
}

// Pruning: batches of pruneBatch rows of a kind, resting pruneRest times
// as long as a batch took after it, so that a prune keeps one connection
// busy a quarter of the time at most and leaves room for what the
// database does after a delete (BENCHMARKS.md has the figures).
const (
	pruneBatch = 1000
	pruneRest  = 3
)

// Prune removes what has expired, if the Store implements [Pruner]:
// tokens past their expiry, ended cooldowns and budgets with no use
// left in their window. It works in batches of
// 1,000 rows, one short statement each, resting after each batch three
// times as long as it took, until nothing is left or ctx ends, and
// reports what it removed by kind, and logs it. Run it
// periodically (the outbox's Run does); nothing else removes expired
// tokens.
func (s *Service) Prune(ctx context.Context) (Pruned, error) {
	p, ok := s.cfg.Store.(Pruner)
	if !ok {
		return Pruned{}, nil
	}
	var total Pruned
	var took time.Duration
	for first := true; ; first = false {
		if !first {
			if err := backoff.Sleep(ctx, pruneRest*took); err != nil {
				return total, fmt.Errorf("reset: pruning: %w", err)
			}
		}
		began := time.Now()
		n, err := p.Prune(ctx, s.now(), pruneBatch)
		took = time.Since(began)
		total.Tokens += n.Tokens
		total.Cooldowns += n.Cooldowns
		total.Quotas += n.Quotas
		if err != nil {
			return total, fmt.Errorf("reset: pruning: %w", err)
		}
		if n.Tokens < pruneBatch && n.Cooldowns < pruneBatch && n.Quotas < pruneBatch {
			break
		}
	}
	if total.Tokens+total.Cooldowns+total.Quotas > 0 {
		s.log.InfoContext(ctx, "pruned expired records", "tokens", total.Tokens, "cooldowns", total.Cooldowns, "quotas", total.Quotas)
	}
	return total, nil
}

// Dropped returns how many public requests this Service dropped because
// its queue was full.
func (s *Service) Dropped() int64 { return s.dropped.Load() }

// Shutdown stops accepting work (later requests fail with [ErrClosed])
// and stops what the Service started: the in-process queue finishes its
// work, or drops what is left when ctx ends first. A durable queue runs
// on its own (stop its Run through Run's context); Shutdown only stops
// putting work into it. It is safe to call more than once.
func (s *Service) Shutdown(ctx context.Context) error {
	s.closed.Store(true)
	if s.mem == nil {
		return nil
	}
	return s.mem.shutdown(ctx)
}

// memCooldown is the process-local cooldown used when the Store has none.
type memCooldown struct {
	mu     sync.Mutex
	until  map[Hash]cooling
	sweep  time.Time
	secret []byte // random, for this process only
}

func (m *memCooldown) CooldownSecret(context.Context) ([]byte, error) { return m.secret, nil }

// cooling is one running cooldown.
type cooling struct {
	until time.Time
	owner string
}

func (m *memCooldown) Cooldown(_ context.Context, key Hash, owner string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.sweep) {
		for k, c := range m.until {
			if !now.Before(c.until) {
				delete(m.until, k)
			}
		}
		m.sweep = now.Add(time.Minute)
	}
	if c, ok := m.until[key]; ok && now.Before(c.until) && (owner == "" || c.owner != owner) {
		return false, nil
	}
	m.until[key] = cooling{until, owner}
	return true, nil
}
