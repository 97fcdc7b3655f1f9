package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/internal/opstest"
)

func TestFeedbackMariaDB(t *testing.T) {
	s, dsn, prefix := opstest.MariaDB(t)
	feedbackOps(t, map[string]string{"PASSRESET_MYSQL_DSN": dsn, "PASSRESET_TABLE_PREFIX": prefix}, s)
}

func TestFeedbackPostgreSQL(t *testing.T) {
	s, dsn, prefix := opstest.PostgreSQL(t)
	feedbackOps(t, map[string]string{"PASSRESET_PG_DSN": dsn, "PASSRESET_TABLE_PREFIX": prefix}, s)
}

// feedbackOps is what support does: see why an address gets no reset
// email, and let it get them again.
func feedbackOps(t *testing.T, vars map[string]string, s feedback.Store) {
	var sv schemaState
	decode(t, vars, exitOK, &sv, "schema", "migrate")
	if code, _, errOut := cmd(t, vars, "feedback", "show", "ann@example.com"); code != exitUsage || !strings.Contains(errOut, "FEEDBACK_KEY") {
		t.Fatalf("feedback show without FEEDBACK_KEY: exit %d, %q", code, errOut)
	}
	key := bytes.Repeat([]byte{9}, 32)
	vars["FEEDBACK_KEY"] = base64.StdEncoding.EncodeToString(key)
	fb, err := feedback.New(feedback.Options{Store: s, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for i, e := range []feedback.Event{
		{ID: "msg_1", Type: feedback.Sent, Time: at, MessageID: "M1", ProviderID: "e1"},
		{ID: "msg_2", Type: feedback.Bounced, Bounce: feedback.Hard, Detail: "NoEmail", Time: at.Add(time.Second), MessageID: "M1", ProviderID: "e1"},
	} {
		if err := fb.Record(t.Context(), "Ann@Example.com", e); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
	var got struct {
		Suppressed bool
		Events     []feedbackEvent
	}
	decode(t, vars, exitOK, &got, "feedback", "show", "ann@example.com")
	if !got.Suppressed || len(got.Events) != 2 || got.Events[0].Type != feedback.Bounced || got.Events[0].Bounce != feedback.Hard ||
		got.Events[0].MessageID != "M1" || !got.Events[0].Time.Equal(at.Add(time.Second)) {
		t.Fatalf("feedback show: %+v", got)
	}
	if code, out, _ := cmd(t, vars, "feedback", "show", "ann@example.com"); code != exitOK || !strings.Contains(out, "suppressed:") || !strings.Contains(out, "NoEmail") {
		t.Fatalf("feedback show: exit %d, %q", code, out)
	}
	if code, out, _ := cmd(t, vars, "feedback", "clear", "ann@example.com"); code != exitOK || !strings.Contains(out, "cleared") {
		t.Fatalf("feedback clear: exit %d, %q", code, out)
	}
	decode(t, vars, exitOK, &got, "feedback", "show", "ann@example.com")
	if got.Suppressed || len(got.Events) != 2 {
		t.Fatalf("feedback show after clear: %+v", got)
	}
}
