package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// baseEnv is a complete environment without the outbox settings.
func baseEnv() map[string]string {
	return map[string]string{
		"PASSRESET_MYSQL_DSN": "app:secret@tcp(db:3306)/app", "RESEND_API_KEY": "re_x",
		"MAIL_FROM": "a@example.com", "PUBLIC_URL": "https://acme.example",
		"OUTBOX_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
	}
}

// OUTBOX_RATE, OUTBOX_BATCH and OUTBOX_LEASE reach the outbox's options;
// unset, they leave the defaults (the mailer's advertised rate).
func TestOutboxSettings(t *testing.T) {
	for _, tc := range []struct {
		set   map[string]string
		rate  float64
		batch int
		lease time.Duration
	}{
		{nil, 0, 0, 0},
		{map[string]string{"OUTBOX_RATE": "10", "OUTBOX_BATCH": "50", "OUTBOX_LEASE": "20s"}, 10, 50, 20 * time.Second},
		{map[string]string{"OUTBOX_RATE": "none"}, -1, 0, 0},
	} {
		env := baseEnv()
		for k, v := range tc.set {
			env[k] = v
		}
		c, err := readConfig(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%v: %v", tc.set, err)
		}
		o := c.outboxOptions()
		if o.Rate != tc.rate || o.Batch != tc.batch || o.Lease != tc.lease {
			t.Errorf("%v: Rate %v, Batch %d, Lease %v; want %v, %d, %v",
				tc.set, o.Rate, o.Batch, o.Lease, tc.rate, tc.batch, tc.lease)
		}
	}
}

func TestOutboxSettingsRefused(t *testing.T) {
	for name, bad := range map[string][]string{
		"OUTBOX_RATE":  {"0", "-2", "fast", "NaN", "Inf"},
		"OUTBOX_BATCH": {"0", "-1", "many"},
		"OUTBOX_LEASE": {"500ms", "15", "-1s"},
	} {
		for _, v := range bad {
			env := baseEnv()
			env[name] = v
			if _, err := readConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: error %v, want one naming %s", name, v, err, name)
			}
		}
	}
}
