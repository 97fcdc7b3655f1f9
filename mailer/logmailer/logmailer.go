// Package logmailer is a [reset.Mailer] for development: it writes each
// message (recipient, subject and plain text, link included) to an
// [io.Writer] or a [slog.Logger] instead of sending it.
//
// It prints reset links: never use it in production.
package logmailer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/passreset/passreset/reset"
)

// Mailer writes messages instead of sending them. Create one with [New] or
// [NewLogger]. It is safe for concurrent use.
type Mailer struct {
	mu     sync.Mutex
	w      io.Writer
	logger *slog.Logger
}

var _ reset.Mailer = (*Mailer)(nil)

// New returns a Mailer that writes each message to w as a block of text.
func New(w io.Writer) *Mailer { return &Mailer{w: w} }

// NewLogger returns a Mailer that logs each message at level Info.
func NewLogger(l *slog.Logger) *Mailer { return &Mailer{logger: l} }

// Send writes msg.
func (m *Mailer) Send(ctx context.Context, msg reset.Message) error {
	if m.logger != nil {
		m.logger.InfoContext(ctx, "email", "to", msg.To, "subject", msg.Subject,
			"kind", msg.Kind, "id", msg.ID, "text", msg.Text)
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := fmt.Fprintf(m.w, "----- email %s (%s)\nTo: %s\nSubject: %s\n\n%s----- end of email\n",
		msg.ID, msg.Kind, msg.To, msg.Subject, msg.Text)
	if err != nil {
		return fmt.Errorf("logmailer: %w", err)
	}
	return nil
}
