package reset_test

import (
	"strings"
	"testing"

	"github.com/passreset/passreset/reset"
)

// TestTemplatesMessagesChangeOneTextAndAddALanguage is the documented way
// to change the emails' texts, through the public API: one German text
// changes, Italian is added with two texts, and everything else stays as
// shipped. The copies DefaultMessages and Service.Config return change
// nothing when changed.
func TestTemplatesMessagesChangeOneTextAndAddALanguage(t *testing.T) {
	changes := reset.Messages{
		"de": {"reset.button": "Los geht's"},
		"it": {"reset.subject": "Reimposta la password di {{.Product}}", "greeting": "Ciao,"},
	}
	e := newEnv(t, func(c *reset.Config) { c.Product = "Acme"; c.Templates = &reset.Templates{Messages: changes} })
	changes["de"]["reset.button"] = "changed after New"

	got := e.svc.Config().Templates.Messages
	if got["de"]["reset.button"] != "Los geht's" || len(got) != 2 {
		t.Fatalf("Service.Config().Templates.Messages = %v", got)
	}
	got["de"]["reset.button"] = "changed through Config"
	shipped := reset.DefaultMessages()
	shipped["de"]["greeting"] = "changed through DefaultMessages"
	delete(shipped, "en")
	if reset.DefaultMessages()["de"]["greeting"] != "Hallo," || len(reset.DefaultMessages()) != 8 {
		t.Fatal("DefaultMessages returned the shipped map, not a copy")
	}

	for _, tc := range []struct {
		locale, subject string
		text, html      []string
	}{
		{"de-CH", "Setzen Sie Ihr Acme-Passwort zurück", []string{"Hallo,\n"}, []string{"Los geht&#39;s", `lang="de"`}},
		{"it", "Reimposta la password di Acme", []string{"Ciao,\n", "open this link within 1 hour:"}, []string{`lang="it" dir="ltr"`}},
		{"en", "Reset your Acme password", []string{"Hello,\n"}, []string{"Choose a new password"}},
	} {
		e.users.SetLocale(userEmail, tc.locale)
		iss := e.request(t, reset.TrustedRequest{Email: userEmail, Wait: true})
		msgs := e.mailer.Messages()
		m := msgs[len(msgs)-1]
		if m.Subject != tc.subject || !strings.Contains(m.Text, iss.Link) {
			t.Errorf("%s: subject %q\n%s", tc.locale, m.Subject, m.Text)
		}
		for _, s := range tc.text {
			if !strings.Contains(m.Text, s) {
				t.Errorf("%s: the text part lacks %q:\n%s", tc.locale, s, m.Text)
			}
		}
		for _, s := range tc.html {
			if !strings.Contains(m.HTML, s) {
				t.Errorf("%s: the HTML part lacks %q:\n%s", tc.locale, s, m.HTML)
			}
		}
		if strings.Contains(m.Text+m.HTML, "changed") {
			t.Errorf("%s: a change made after New reached the email:\n%s", tc.locale, m.HTML)
		}
	}
}
