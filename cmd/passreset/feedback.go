package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/passreset/passreset/feedback"
)

type feedbackCmd struct {
	Show  feedbackShowCmd  `cmd:"" help:"Show the last delivery events of an address and whether reset emails to it are suppressed."`
	Clear feedbackClearCmd `cmd:"" help:"Let reset emails go to an address again after a hard bounce or a complaint."`
}

// openFeedback makes the Feedback of the configured store, keyed with
// FEEDBACK_KEY.
func openFeedback(e *env, s *store) (*feedback.Feedback, error) {
	raw := e.getenv("FEEDBACK_KEY")
	key, err := base64.StdEncoding.DecodeString(raw)
	if raw == "" || err != nil || len(key) < 32 {
		return nil, usageError{errors.New("FEEDBACK_KEY must be the base64 of the application's feedback key (32 bytes or more)")}
	}
	return feedback.New(feedback.Options{Store: s.fb, Key: key})
}

type feedbackShowCmd struct {
	Email string `arg:"" help:"The account's email address."`
	Last  int    `default:"10" help:"How many events, newest first (at most 100)."`
}

// feedbackEvent is one event as the command prints it.
type feedbackEvent struct {
	Type       feedback.Type   `json:"type"`
	Bounce     feedback.Bounce `json:"bounce,omitempty"`
	Detail     string          `json:"detail,omitempty"`
	Time       time.Time       `json:"time"`
	Received   time.Time       `json:"received"`
	MessageID  string          `json:"messageId,omitempty"`
	ProviderID string          `json:"providerId,omitempty"`
}

// Run prints whether the address is suppressed and its last events.
func (c feedbackShowCmd) Run(e *env) error {
	return e.withStore(func(s *store) error {
		fb, err := openFeedback(e, s)
		if err != nil {
			return err
		}
		held, err := fb.Suppressed(e.ctx, c.Email)
		if err != nil {
			return err
		}
		evs, err := fb.Last(e.ctx, c.Email, c.Last)
		if err != nil {
			return err
		}
		out := struct {
			Suppressed bool            `json:"suppressed"`
			Events     []feedbackEvent `json:"events"`
		}{held, []feedbackEvent{}}
		for _, ev := range evs {
			out.Events = append(out.Events, feedbackEvent{ev.Type, ev.Bounce, ev.Detail, ev.Time, ev.Received, ev.MessageID, ev.ProviderID})
		}
		return e.print(out, func(w io.Writer) {
			if held {
				fmt.Fprintln(w, "suppressed: reset emails are not sent (passreset feedback clear lifts it)")
			} else {
				fmt.Fprintln(w, "not suppressed")
			}
			if len(evs) == 0 {
				fmt.Fprintln(w, "no delivery events")
				return
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "time\tevent\tbounce\tdetail\tmessage\tprovider id")
			for _, ev := range out.Events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ev.Time.Format(time.RFC3339), ev.Type, ev.Bounce, ev.Detail, ev.MessageID, ev.ProviderID)
			}
			tw.Flush()
		})
	})
}

type feedbackClearCmd struct {
	Email string `arg:"" help:"The account's email address."`
}

// Run lifts the address's suppression.
func (c feedbackClearCmd) Run(e *env) error {
	return e.withStore(func(s *store) error {
		fb, err := openFeedback(e, s)
		if err != nil {
			return err
		}
		if err := fb.Clear(e.ctx, c.Email); err != nil {
			return err
		}
		return e.print(struct {
			Cleared bool `json:"cleared"`
		}{true}, func(w io.Writer) { fmt.Fprintln(w, "cleared: reset emails go to this address again") })
	})
}
