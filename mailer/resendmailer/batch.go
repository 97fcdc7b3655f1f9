package resendmailer

import (
	"context"
	"fmt"

	"github.com/resend/resend-go/v2"

	"github.com/passreset/passreset/internal/redact"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// MaxBatch is the most messages one SendBatch sends: the most emails
// Resend's batch endpoint takes in one request.
const MaxBatch = 100

var _ outbox.BatchMailer = (*Mailer)(nil)

// MaxBatch returns [MaxBatch], 100.
func (m *Mailer) MaxBatch() int { return MaxBatch }

// SendBatch sends msgs in one call to Resend's batch endpoint
// (POST /emails/batch) with key as its Idempotency-Key and permissive
// validation, so that a message Resend refuses does not hold back the
// others. It returns:
//
//   - err != nil when the call as a whole failed, classified as for Send:
//     reset.ErrOutcomeUnknown (the request was written but no answer
//     came: the caller retries the same batch with the same key, and
//     Resend replays its first answer, sending nothing twice),
//     [ErrTransient] (known not sent: a 5xx, 409
//     concurrent_idempotent_requests, Resend unreachable), a
//     [*reset.RateLimitError] for a 429, or [ErrPermanent] (a bad API
//     key, 409 invalid_idempotent_request, a quota, more than MaxBatch
//     messages, a key longer than 256 bytes): retrying is useless. The
//     per-message slice is nil.
//   - err == nil and one error per message otherwise: nil for a message
//     Resend accepted; an error matching ErrPermanent for a message Resend
//     refused in its answer's errors, or that could not become a request
//     (no ID, no recipient: see Send); such a message was not sent.
//
// The request holds the messages that could become one, in the order of
// msgs, so the same msgs always make the same request under key. An
// empty msgs sends nothing.
func (m *Mailer) SendBatch(ctx context.Context, key string, msgs []reset.Message) (perMessage []error, err error) {
	what := "batch " + key
	switch {
	case len(msgs) == 0:
		return nil, nil
	case len(msgs) > MaxBatch:
		return nil, fmt.Errorf("resendmailer: send %s: %d messages, more than %d (%w)", what, len(msgs), MaxBatch, ErrPermanent)
	case key == "" || len(key) > 256:
		return nil, fmt.Errorf("resendmailer: send %s: the idempotency key must be 1 to 256 bytes (%w)", what, ErrPermanent)
	}
	perMessage = make([]error, len(msgs))
	var reqs []*resend.SendEmailRequest
	var index []int // index[j] is the position in msgs of reqs[j]
	for i, msg := range msgs {
		if err := checkMessage(msg); err != nil {
			perMessage[i] = fmt.Errorf("resendmailer: send %s in %s: %s (%w)", msg.IdempotencyKey(), what, err, ErrPermanent)
			continue
		}
		reqs = append(reqs, m.request(msg))
		index = append(index, i)
	}
	if len(reqs) == 0 {
		return perMessage, nil
	}

	opts := &resend.BatchSendEmailOptions{IdempotencyKey: key, BatchValidation: resend.BatchValidationPermissive}
	attrs := []any{"batch_key", key, "messages", len(reqs)}
	var resp *resend.BatchEmailResponse
	err = m.call(ctx, attrs, func(actx context.Context) error {
		r, err := m.client.Batch.SendWithOptions(actx, reqs, opts)
		if err == nil {
			resp = r
			m.log.DebugContext(ctx, "resend accepted batch", append(attrs, "accepted", len(r.Data), "refused", len(r.Errors))...)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("resendmailer: send %s: %w", what, err)
	}

	refused, err := refusals(resp, len(reqs))
	if err != nil {
		// Resend answered 2xx, but what became of each email is unclear.
		return nil, fmt.Errorf("resendmailer: send %s: %w", what, unknownError{err})
	}
	for j, i := range index {
		if reason, ok := refused[j]; ok {
			m.log.DebugContext(ctx, "resend refused email in batch", "batch_key", key, "message_id", msgs[i].ID, "kind", msgs[i].Kind)
			perMessage[i] = fmt.Errorf("resendmailer: send %s in %s: resend refused it: %s (%w)", msgs[i].IdempotencyKey(), what, reason, ErrPermanent)
		}
	}
	return perMessage, nil
}

// refusals reads a permissive batch answer for n emails: the reason for
// each refused email, by its index in the request. An answer that does not
// account for every email (an index out of range or twice, or ids and
// errors that do not add up to n) is an error: what became of the emails
// is unknown.
func refusals(resp *resend.BatchEmailResponse, n int) (map[int]string, error) {
	refused := make(map[int]string, len(resp.Errors))
	for _, e := range resp.Errors {
		if _, dup := refused[e.Index]; dup || e.Index < 0 || e.Index >= n {
			return nil, fmt.Errorf("resend's answer names email %d of %d in errors, out of range or twice", e.Index, n)
		}
		refused[e.Index] = redact.Reply(e.Message)
	}
	if len(resp.Data)+len(refused) != n {
		return nil, fmt.Errorf("resend's answer holds %d ids and %d errors for %d emails", len(resp.Data), len(refused), n)
	}
	return refused, nil
}
