package outbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/passreset/passreset/reset"
)

// SealKey is one key of the outbox: 32 bytes for AES-256-GCM, and an ID
// stored beside each sealed envelope so that keys can rotate.
//
// Rotating a key across several instances takes two deployments. First
// add the new key at the end of Options.Keys everywhere (it opens, it
// does not seal yet); once every instance runs with it, move it to the
// front (it seals). Remove the old key when no envelope sealed with it is
// pending. An instance that claims an envelope sealed with a key it does
// not have gives it back unchanged for the others and logs a warning; it
// never discards it. The keys seal envelopes only: cooldowns and token
// hashes do not depend on them.
type SealKey struct {
	ID  string // 1 to 64 bytes
	Key []byte // 32 random bytes
}

// sealer seals and opens envelopes' content.
type sealer struct {
	current string
	aeads   map[string]cipher.AEAD
}

func newSealer(keys []SealKey) (*sealer, error) {
	s := &sealer{aeads: map[string]cipher.AEAD{}}
	for i, k := range keys {
		if k.ID == "" || len(k.ID) > 64 {
			return nil, fmt.Errorf("seal key Keys[%d]: ID must have 1 to 64 bytes", i)
		}
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("seal key Keys[%d] (%q): key must be 32 bytes, got %d", i, k.ID, len(k.Key))
		}
		if _, dup := s.aeads[k.ID]; dup {
			return nil, fmt.Errorf("seal key Keys[%d]: duplicate ID %q", i, k.ID)
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
		if i == 0 {
			s.current = k.ID
		}
	}
	return s, nil
}

// content is what an envelope seals.
//
// A request holds the typed address and the caller's link, and once
// carried out its rendered email too; a message holds its email; a batch
// holds its members, in the order the provider gets them.
type content struct {
	Email  string         `json:"e,omitempty"` // a request's typed address
	Link   string         `json:"l,omitempty"` // a request's link base, or ""
	Passed bool           `json:"p,omitempty"` // the request passed the cooldown
	Msg    *reset.Message `json:"m,omitempty"` // the rendered email; nil until rendered
	// Unknown says that the envelope was handed to the provider and no
	// answer came: it is sent again only as it is (a message alone, a
	// batch whole), under the same idempotency key.
	Unknown bool     `json:"u,omitempty"`
	Members []member `json:"b,omitempty"` // a batch's members
	// Trace is the trace context of the call that queued it
	// (reset.Job.Trace), restored into the ctx of its Mailer call.
	Trace map[string]string `json:"t,omitempty"`
}

// member is one envelope folded into a batch: what it needs to become an
// envelope of its own again if the provider refuses its message.
type member struct {
	ID        string    `json:"id"`
	Kind      string    `json:"k"`
	Attempts  int       `json:"n,omitempty"`
	CreatedAt time.Time `json:"c"`
	Content   content   `json:"x"`
}

// seal encrypts c, bound to the envelope's ID.
func (s *sealer) seal(envID string, c content) (sealed []byte, keyID string, err error) {
	if s.current == "" {
		return nil, "", errors.New("outbox: no key to seal with (Options.Keys is empty)")
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, "", err
	}
	aead := s.aeads[s.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, []byte(envID)), s.current, nil
}

// errNoKey means that an envelope was sealed with a key this instance
// does not have (yet): another instance, further along a key rotation,
// has it.
var errNoKey = errors.New("outbox: sealed with a key this instance does not have")

// open decrypts what seal made.
func (s *sealer) open(envID, keyID string, sealed []byte) (content, error) {
	aead, ok := s.aeads[keyID]
	if !ok {
		return content{}, fmt.Errorf("%w: %q", errNoKey, keyID)
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return content{}, errors.New("outbox: sealed content too short")
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(envID))
	if err != nil {
		return content{}, fmt.Errorf("outbox: opening sealed content: %w", err)
	}
	var c content
	if err := json.Unmarshal(plain, &c); err != nil {
		return content{}, fmt.Errorf("outbox: decoding sealed content: %w", err)
	}
	return c, nil
}
