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

// Envelope kinds.
const (
	// EnvelopeRequest is a public password-lost request still to be carried
	// out: look the address up, apply the cooldown, issue a token, mail it.
	EnvelopeRequest = "request"
	// EnvelopeMessage is a rendered email, sealed, waiting to be sent.
	EnvelopeMessage = "message"
)

// Envelope is one entry of the durable outbox. It holds nothing in the
// clear that names a person: the typed address, the caller's link and,
// once rendered, the email are sealed together with AES-256-GCM under a
// key the application provides ([OutboxOptions.Keys]), and deleted when the
// email is sent. A Store keeps Sealed as opaque bytes.
type Envelope struct {
	ID        string    // unique; also the identity of the email it carries
	Kind      string    // EnvelopeRequest or EnvelopeMessage
	Sealed    []byte    // the sealed content; never nil for a queued envelope
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
	Pending int       // envelopes waiting or being worked on, up to the limit asked for
	Dead    int       // envelopes moved aside, up to the limit asked for
	Oldest  time.Time // CreatedAt of the oldest pending envelope; zero if none
}

// OutboxStore is an optional Store capability: a durable outbox that many
// workers in many processes drain at once. Every method must be safe for
// concurrent use from several processes sharing the store.
type OutboxStore interface {
	// Enqueue adds e in one statement whose cost does not grow with the
	// number of envelopes. It does not count them: the Service bounds the
	// outbox from OutboxStats (see [OutboxOptions.MaxPending]).
	Enqueue(ctx context.Context, e Envelope) error

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

	// OutboxStats counts the pending and the dead envelopes, each up to
	// limit (a count equal to limit means "limit or more"), and finds the
	// oldest pending one. Its cost must not exceed reading about limit
	// index entries, whatever the size of the outbox.
	OutboxStats(ctx context.Context, limit int) (OutboxStats, error)

	// Dead returns up to limit dead envelopes, oldest first.
	Dead(ctx context.Context, limit int) ([]Envelope, error)

	// Revive makes the dead envelope with id pending again, due at now,
	// with Attempts and Claims reset. It returns ErrNotFound if no dead envelope has
	// that id.
	Revive(ctx context.Context, id string, now time.Time) error
}

// SealKey is one key of the outbox: 32 bytes for AES-256-GCM, and an ID
// stored beside each sealed envelope so that keys can rotate.
//
// Rotating a key across several instances takes two deployments. First
// add the new key at the end of Keys everywhere (it opens, it does not
// seal yet); once every instance runs with it, move it to the front (it
// seals). Remove the old key when no envelope sealed with it is pending. An
// instance that claims an envelope sealed with a key it does not have
// releases it for the others and logs a warning; it never discards it.
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

// content is what an envelope seals: a public request still to be carried
// out (Email and Link), and once it is, the rendered Message; or a notice
// (Message only).
type content struct {
	Email  string   `json:"e,omitempty"` // the typed address of a request
	Link   string   `json:"l,omitempty"` // a request's caller-supplied link base, or ""
	Passed bool     `json:"p,omitempty"` // the request passed the cooldown
	Msg    *Message `json:"m,omitempty"` // the rendered email; nil until rendered
	// Batch, when set, says that Msg was handed to a BatchMailer as part
	// of a batch whose outcome is not known yet (see outbox_batch.go).
	Batch *batchMark `json:"b,omitempty"`
}

// seal encrypts c, bound to the envelope's ID.
func (s *sealer) seal(envID string, c content) (sealed []byte, keyID string, err error) {
	plain, err := json.Marshal(c)
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

// errNoKey means that an envelope was sealed with a key this Service does
// not have (yet): another instance, further along a key rotation, has it.
var errNoKey = errors.New("reset: outbox key is not configured here")

// open decrypts what seal made.
func (s *sealer) open(envID, keyID string, sealed []byte) (content, error) {
	aead, ok := s.aeads[keyID]
	if !ok {
		return content{}, fmt.Errorf("%w: %q", errNoKey, keyID)
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return content{}, errors.New("reset: sealed content too short")
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(envID))
	if err != nil {
		return content{}, fmt.Errorf("reset: opening sealed content: %w", err)
	}
	var c content
	if err := json.Unmarshal(plain, &c); err != nil {
		return content{}, fmt.Errorf("reset: decoding sealed content: %w", err)
	}
	return c, nil
}
