package reset

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrLeaseLost is what an [OutboxStore] returns when a worker saves or
// deletes an envelope whose lease it no longer holds (it expired and
// another worker claimed the envelope). The worker drops the envelope.
var ErrLeaseLost = errors.New("reset: outbox lease lost")

// ErrPermanent marks a delivery failure that retrying cannot fix, such as
// a rejected address or a revoked API key. Mailers return errors for which
// errors.Is(err, ErrPermanent) holds; the durable outbox then moves the
// message aside at once instead of retrying it.
var ErrPermanent = errors.New("reset: permanent delivery failure")

// Envelope kinds.
const (
	// EnvelopeRequest is a public password-lost request still to be carried
	// out: look the address up, apply the cooldown, issue a token, mail it.
	EnvelopeRequest = "request"
	// EnvelopeMessage is a rendered email, sealed, waiting to be sent.
	EnvelopeMessage = "message"
)

// Envelope is one entry of the durable outbox. It never holds a token or a
// link in the clear: once rendered, the email is sealed with AES-256-GCM
// under a key the application provides, and erased when it is sent or
// abandoned.
type Envelope struct {
	ID        string    // unique; also the identity of the email it carries
	Kind      string    // EnvelopeRequest or EnvelopeMessage
	Email     string    // the typed address of a request
	Link      string    // a request's caller-supplied link base (no token), or ""
	Sealed    []byte    // the sealed Message; nil until rendered
	KeyID     string    // the ID of the key that sealed it
	Attempts  int       // failed deliveries so far
	Claims    int       // times claimed by a worker, counted by Claim
	NotBefore time.Time // not to be claimed before this time (UTC)
	CreatedAt time.Time // when it was queued (UTC)
	Dead      bool      // moved aside: not claimed until revived
	LastError string    // the last failure, without secrets
}

// OutboxStats describes the outbox at one moment.
type OutboxStats struct {
	Pending int       // envelopes waiting or being worked on
	Dead    int       // envelopes moved aside
	Oldest  time.Time // CreatedAt of the oldest pending envelope; zero if none
}

// OutboxStore is an optional Store capability: a durable outbox that many
// workers in many processes drain at once. Every method must be safe for
// concurrent use from several processes sharing the store.
type OutboxStore interface {
	// Enqueue adds e. It returns ErrQueueFull, adding nothing, when
	// maxPending envelopes are already pending.
	Enqueue(ctx context.Context, e Envelope, maxPending int) error

	// Claim leases up to max envelopes that are not dead, are due
	// (NotBefore not after now) and not leased (or whose lease ended by
	// now) to worker until leaseUntil, oldest first, adds one to their
	// Claims, and returns them. Two concurrent claims never return the same
	// envelope while its lease runs.
	Claim(ctx context.Context, worker string, now, leaseUntil time.Time, max int) ([]Envelope, error)

	// Save stores e's Sealed, KeyID, Attempts, NotBefore, Dead and
	// LastError if worker still holds its lease, keeping the lease when hold
	// is true and ending it otherwise. It returns ErrLeaseLost if worker does
	// not hold the lease.
	Save(ctx context.Context, worker string, e Envelope, hold bool) error

	// Delete removes the envelope with id if worker holds its lease; it
	// returns ErrLeaseLost otherwise.
	Delete(ctx context.Context, worker, id string) error

	// OutboxStats counts the envelopes.
	OutboxStats(ctx context.Context) (OutboxStats, error)

	// Dead returns up to limit dead envelopes, oldest first.
	Dead(ctx context.Context, limit int) ([]Envelope, error)

	// Revive makes the dead envelope with id pending again, due at now,
	// with Attempts and Claims reset. It returns ErrNotFound if no dead envelope has
	// that id.
	Revive(ctx context.Context, id string, now time.Time) error
}

// SealKey is one key of the outbox: 32 bytes for AES-256-GCM, and an ID
// stored beside each sealed message so that keys can rotate.
type SealKey struct {
	ID  string
	Key []byte
}

// sealer seals and opens messages.
type sealer struct {
	current string
	aeads   map[string]cipher.AEAD
	rand    io.Reader
}

func newSealer(keys []SealKey, r io.Reader) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("Outbox.Keys: at least one 32-byte key is required to seal queued messages")
	}
	s := &sealer{current: keys[0].ID, aeads: map[string]cipher.AEAD{}, rand: r}
	for i, k := range keys {
		if k.ID == "" || len(k.ID) > 64 {
			return nil, fmt.Errorf("Outbox.Keys[%d]: ID must have 1 to 64 bytes", i)
		}
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("Outbox.Keys[%d] (%q): key must be 32 bytes, got %d", i, k.ID, len(k.Key))
		}
		if _, dup := s.aeads[k.ID]; dup {
			return nil, fmt.Errorf("Outbox.Keys[%d]: duplicate ID %q", i, k.ID)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads[k.ID] = aead
	}
	return s, nil
}

// seal encrypts msg, bound to the envelope's ID.
func (s *sealer) seal(envID string, msg Message) (sealed []byte, keyID string, err error) {
	plain, err := json.Marshal(msg)
	if err != nil {
		return nil, "", err
	}
	aead := s.aeads[s.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, "", fmt.Errorf("reset: reading randomness: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, []byte(envID)), s.current, nil
}

// open decrypts what seal made.
func (s *sealer) open(envID, keyID string, sealed []byte) (Message, error) {
	aead, ok := s.aeads[keyID]
	if !ok {
		return Message{}, fmt.Errorf("reset: outbox key %q is not configured", keyID)
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return Message{}, errors.New("reset: sealed message too short")
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(envID))
	if err != nil {
		return Message{}, fmt.Errorf("reset: opening sealed message: %w", err)
	}
	var msg Message
	if err := json.Unmarshal(plain, &msg); err != nil {
		return Message{}, fmt.Errorf("reset: decoding sealed message: %w", err)
	}
	return msg, nil
}
