package resendmailer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"

	"github.com/passreset/passreset/feedback"
)

// MessageTag is the name of the tag that carries a message's ID
// (reset.Message.ID). Send and SendBatch add it to every email whose ID is
// a valid tag value (every ID package reset makes), and Resend hands the
// tags back in its webhook events, so that [Webhook] can tell which
// message an event is about.
const MessageTag = "message_id"

// WebhookTolerance is how far a webhook's svix-timestamp may be from the
// receiving machine's clock, either way: resend-go's
// DefaultWebhookToleranceSeconds. An older post is refused as stale.
const WebhookTolerance = resend.DefaultWebhookToleranceSeconds * time.Second

// DefaultWebhookMaxBody is the largest webhook body [Webhook] reads when
// WebhookOptions.MaxBody is zero.
const DefaultWebhookMaxBody = 1 << 20

// WebhookOptions configures a [Webhook]. Secret and Feedback are required;
// for the other fields the zero value means the default its comment
// names.
type WebhookOptions struct {
	// Secret is the webhook's signing secret, "whsec_" and base64, as
	// Resend shows it when the webhook is created. Required. It is never
	// logged or put in an error.
	Secret string

	// Feedback records the events. Required.
	Feedback *feedback.Feedback

	// MaxBody bounds the body read. Default [DefaultWebhookMaxBody].
	MaxBody int64

	// Logger receives a Debug record for each post refused (with the
	// reason, never the body or the address) and a Warn record for each
	// event that could not be stored. Default: no logging.
	Logger *slog.Logger
}

// Webhook is the http.Handler for Resend's webhook posts: give its URL to
// Resend for the events email.sent, email.delivered,
// email.delivery_delayed, email.bounced, email.complained and
// email.suppressed. Create one with [NewWebhook]. It is safe for
// concurrent use.
//
// It checks each post with resend-go's verification (the Svix headers
// svix-id, svix-timestamp and svix-signature: the HMAC-SHA-256 signature
// under the secret, and a timestamp within [WebhookTolerance]) and
// answers:
//
//	204  the event was recorded, or is of a type it does not record
//	     (email.opened, contact.created, ...), which changes nothing
//	400  unsigned, wrongly signed, stale, or not an event it can read:
//	     nothing changes
//	405  not a POST
//	409  replayed: an event with this svix-id was recorded already, and
//	     nothing changes (the feedback Store remembers the IDs until
//	     Feedback.Prune removes them: keep them for at least
//	     WebhookTolerance)
//	413  the body is larger than MaxBody
//	500  the Store failed: Resend posts the event again later
//
// Each event is recorded for each address in its data.to, under
// passreset's message ID from the [MessageTag] tag (empty for an email the
// Mailer did not tag), Resend's email_id and the event's created_at. A
// bounce of type Permanent is [feedback.Hard], any other bounce
// [feedback.Soft]; a hard bounce and a complaint suppress the address.
// email.suppressed (Resend kept the email back: the address is on its
// own suppression list) is recorded as a complaint for the reason
// previous_complaint and as a hard bounce otherwise, with the reason as
// Detail.
type Webhook struct {
	secret string
	fb     *feedback.Feedback
	max    int64
	log    *slog.Logger
}

// NewWebhook returns a Webhook configured by opts, or an error that names
// every missing or invalid field.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	var problems []string
	if opts.Secret == "" {
		problems = append(problems, "Secret is required")
	} else if s, ok := strings.CutPrefix(opts.Secret, "whsec_"); !ok {
		problems = append(problems, `Secret must start with "whsec_"`)
	} else if b, err := base64.StdEncoding.DecodeString(s); err != nil || len(b) == 0 {
		problems = append(problems, `Secret must be "whsec_" and base64`)
	}
	if opts.Feedback == nil {
		problems = append(problems, "Feedback is required")
	}
	if opts.MaxBody < 0 {
		problems = append(problems, "MaxBody is negative")
	}
	if len(problems) > 0 {
		return nil, errors.New("resendmailer: invalid webhook options: " + strings.Join(problems, "; "))
	}
	w := &Webhook{secret: opts.Secret, fb: opts.Feedback, max: opts.MaxBody, log: opts.Logger}
	if w.max == 0 {
		w.max = DefaultWebhookMaxBody
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w, nil
}

// webhookEvent is the part of Resend's webhook payload the Webhook reads.
type webhookEvent struct {
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	Data      struct {
		EmailID   string            `json:"email_id"`
		CreatedAt string            `json:"created_at"`
		To        []string          `json:"to"`
		Tags      map[string]string `json:"tags"`
		Bounce    *struct {
			Type    string `json:"type"`
			SubType string `json:"subType"`
		} `json:"bounce"`
		Suppressed *struct {
			Reason string `json:"reason"`
		} `json:"suppressed"`
	} `json:"data"`
}

// eventTypes maps Resend's event types to the ones recorded.
var eventTypes = map[string]feedback.Type{
	"email.sent":             feedback.Sent,
	"email.delivered":        feedback.Delivered,
	"email.delivery_delayed": feedback.Delayed,
	"email.bounced":          feedback.Bounced,
	"email.complained":       feedback.Complained,
	// Resend did not send: the address is on its suppression list. The
	// type depends on the reason (see toEvents).
	"email.suppressed": feedback.Bounced,
}

// ServeHTTP implements http.Handler.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, w.max))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			w.refuse(rw, r, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		w.refuse(rw, r, http.StatusBadRequest, "reading the body failed")
		return
	}
	id := r.Header.Get("svix-id")
	err = (&resend.WebhooksSvcImpl{}).Verify(&resend.VerifyWebhookOptions{
		Payload:       string(body),
		WebhookSecret: w.secret,
		Headers: resend.WebhookHeaders{
			Id:        id,
			Timestamp: r.Header.Get("svix-timestamp"),
			Signature: r.Header.Get("svix-signature"),
		},
	})
	if err != nil {
		w.refuse(rw, r, http.StatusBadRequest, "verification failed: "+err.Error())
		return
	}
	var ev webhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		w.refuse(rw, r, http.StatusBadRequest, "the body is not a JSON event")
		return
	}
	typ, ok := eventTypes[ev.Type]
	if !ok {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	events, err := toEvents(id, typ, &ev)
	if err != nil {
		w.refuse(rw, r, http.StatusBadRequest, err.Error())
		return
	}
	for i, e := range events {
		err := w.fb.Record(ctx, ev.Data.To[i], e)
		switch {
		case errors.Is(err, feedback.ErrReplayed) && i == 0:
			w.refuse(rw, r, http.StatusConflict, "replayed")
			return
		case errors.Is(err, feedback.ErrReplayed):
			// A retry after a failure part-way through an event with
			// several recipients: the earlier ones are stored.
		case errors.Is(err, feedback.ErrInvalidEvent) && i == 0:
			w.refuse(rw, r, http.StatusBadRequest, err.Error())
			return
		case err != nil:
			w.log.WarnContext(ctx, "resend webhook: recording the event failed", "svix_id", id, "type", ev.Type, "err", err)
			http.Error(rw, "recording the event failed", http.StatusInternalServerError)
			return
		}
	}
	rw.WriteHeader(http.StatusNoContent)
}

// refuse answers status and logs why at Debug.
func (w *Webhook) refuse(rw http.ResponseWriter, r *http.Request, status int, why string) {
	w.log.DebugContext(r.Context(), "resend webhook refused", "status", status, "reason", why)
	http.Error(rw, http.StatusText(status), status)
}

// toEvents returns the event ev reports for each of its recipients, the
// first under id and the others under id and their index.
func toEvents(id string, typ feedback.Type, ev *webhookEvent) ([]feedback.Event, error) {
	at, err := time.Parse(time.RFC3339Nano, ev.CreatedAt)
	if err != nil {
		return nil, errors.New("created_at is not an RFC 3339 time")
	}
	if len(ev.Data.To) == 0 || len(ev.Data.To) > 50 {
		return nil, errors.New("data.to must hold 1 to 50 addresses")
	}
	e := feedback.Event{
		Type:       typ,
		Time:       at,
		ProviderID: ev.Data.EmailID,
	}
	// A message_id tag that no passreset message ID can be is not ours.
	if id := ev.Data.Tags[MessageTag]; validTag(id) && len(id) <= 64 {
		e.MessageID = id
	}
	if ev.Type == "email.suppressed" {
		switch {
		case ev.Data.Suppressed == nil:
			return nil, errors.New("email.suppressed without data.suppressed")
		case ev.Data.Suppressed.Reason == "previous_complaint":
			e.Type = feedback.Complained
		default:
			e.Bounce = feedback.Hard
		}
		if validTag(ev.Data.Suppressed.Reason) && len(ev.Data.Suppressed.Reason) <= 64 {
			e.Detail = ev.Data.Suppressed.Reason
		}
	} else if typ == feedback.Bounced {
		if ev.Data.Bounce == nil {
			return nil, errors.New("a bounce without data.bounce")
		}
		e.Bounce = feedback.Soft
		if ev.Data.Bounce.Type == "Permanent" {
			e.Bounce = feedback.Hard
		}
		if validTag(ev.Data.Bounce.SubType) && len(ev.Data.Bounce.SubType) <= 64 {
			e.Detail = ev.Data.Bounce.SubType
		}
	}
	events := make([]feedback.Event, len(ev.Data.To))
	for i := range events {
		events[i] = e
		events[i].ID = id
		if i > 0 {
			events[i].ID = id + "/" + strconv.Itoa(i)
		}
	}
	if len(events[len(events)-1].ID) > 255 {
		return nil, fmt.Errorf("svix-id is longer than %d bytes", 255-3)
	}
	return events, nil
}
