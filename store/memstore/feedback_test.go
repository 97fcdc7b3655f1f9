package memstore_test

import (
	"testing"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/feedback/feedbacktest"
	"github.com/passreset/passreset/store/memstore"
)

func TestFeedbackStore(t *testing.T) {
	feedbacktest.Run(t, func(*testing.T) feedback.Store { return memstore.New() })
	// The zero Store works too.
	feedbacktest.Run(t, func(*testing.T) feedback.Store { return new(memstore.Store) })
}
