package mysqlstore_test

import (
	"testing"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/feedback/feedbacktest"
	"github.com/passreset/passreset/store/mysqlstore"
)

func TestFeedbackStore(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	feedbacktest.Run(t, func(*testing.T) feedback.Store { return s })
}
