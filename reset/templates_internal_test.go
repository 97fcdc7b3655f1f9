package reset

import (
	"encoding/base64"
	"html"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/passreset/passreset/internal/i18n"
)

var testTime = time.Date(2026, 5, 2, 12, 30, 0, 0, time.UTC)

func renderAll(t *testing.T, r *renderer, kind string, d MailData) (subject, text, html string) {
	t.Helper()
	subject, text, html, err := r.render(kind, d)
	if err != nil {
		t.Fatalf("%s in %q: %v", kind, d.Locale, err)
	}
	return subject, text, html
}

// FuzzTemplatesEscape checks that no product name, address or link can
// add markup to the HTML email or a line to the subject, and that the
// text email carries them unchanged, in every language.
func FuzzTemplatesEscape(f *testing.F) {
	f.Add("Acme", "jborder@anywhere.com", "https://anywhere.com/reset?token=abc", "en")
	f.Add("A&B", "o'brien+x@example.com", "https://x.example/?a=1&b=<2>&token=\"q\"", "ar")
	f.Add("<b>P</b>", "a@b.c", "javascript:alert(1)", "ja")
	f.Add(`"x'`, "<script>@x", "https://h/p?a=%zz&b=+", "zh-CN")
	f.Fuzz(func(t *testing.T, product, email, link, locale string) {
		if strings.ContainsAny(product+email, "\r\n") || !utf8.ValidString(product+email+link) {
			return // refused before rendering (Product at New, the recipient in message)
		}
		r, err := newRenderer(product, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := newRenderer("x", time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{KindReset, KindInvite, KindChanged} {
			d := MailData{Email: email, Link: link, Time: testTime, Locale: locale}
			subject, text, h := renderAll(t, r, kind, d)
			_, _, h0 := renderAll(t, plain, kind, MailData{Email: "x", Link: "https://x", Time: testTime, Locale: locale})
			for _, c := range []string{"<", ">", `"`} {
				if strings.Count(h, c) != strings.Count(h0, c) {
					t.Fatalf("%s: input changed the count of %q in the HTML:\n%s", kind, c, h)
				}
			}
			if strings.ContainsAny(subject, "\r\n") {
				t.Fatalf("subject %q", subject)
			}
			if !strings.Contains(text, email) || !strings.Contains(text, product) || (kind != KindChanged && !strings.Contains(text, link)) {
				t.Fatalf("%s: text lacks an input:\n%s", kind, text)
			}
			if !strings.ContainsRune(email, 0) && !strings.Contains(html.UnescapeString(h), email) {
				t.Fatalf("%s: HTML lacks the address %q:\n%s", kind, email, h)
			}
		}
	})
}

// TestCatalogsComplete fails on any text missing from a shipped language,
// and on any key a language has that English does not (a typo).
func TestCatalogsComplete(t *testing.T) {
	checkComplete(t, emailMessages)
}

// checkComplete checks that every language of m has every key of English,
// with the plural forms its grammar needs.
func checkComplete(t *testing.T, m Messages) {
	t.Helper()
	counted := map[string]bool{}
	var plain []string
	for k := range m["en"] {
		if i := strings.LastIndexByte(k, '.'); i > 0 && slices.Contains([]string{i18n.PluralZero, i18n.PluralOne, i18n.PluralTwo, i18n.PluralFew, i18n.PluralMany, i18n.PluralOther}, k[i+1:]) {
			counted[k[:i]] = true
			continue
		}
		plain = append(plain, k)
	}
	want := []string{"en", "de", "fr", "es", "pt-BR", "ja", "zh-Hans", "ar"}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("languages %v, want %v", got, want)
	}
	for lang, texts := range m {
		need := map[string]bool{}
		for _, k := range plain {
			need[k] = true
		}
		for k := range counted {
			for _, c := range i18n.PluralCategories(lang) {
				need[k+"."+c] = true
			}
		}
		for k := range need {
			if strings.TrimSpace(texts[k]) == "" {
				t.Errorf("%s: missing %q", lang, k)
			}
		}
		for k := range texts {
			if i := strings.LastIndexByte(k, '.'); !need[k] && !(i > 0 && counted[k[:i]]) {
				t.Errorf("%s: %q is not a key of English", lang, k)
			}
		}
	}
}

// TestEveryLanguageRendersEveryEmail renders every email in every shipped
// language and checks that each is in that language, not English, and
// that the invitation is not the reset email.
func TestEveryLanguageRendersEveryEmail(t *testing.T) {
	r, err := newRenderer("Acme", 90*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	link := "https://app.example.com/reset?token=" + strings.Repeat("A", TokenLen)
	d := func(locale string) MailData {
		return MailData{Email: "jborder@anywhere.com", Link: link, Time: testTime, ExpiresAt: testTime.Add(90 * time.Minute), Locale: locale}
	}
	enSubject := map[string]string{}
	kinds := []string{KindReset, KindInvite, KindChanged}
	for _, kind := range kinds {
		enSubject[kind], _, _ = renderAll(t, r, kind, d("en"))
	}
	for _, lang := range slices.Sorted(maps.Keys(emailMessages)) {
		resetSubject, _, _ := renderAll(t, r, KindReset, d(lang))
		for _, kind := range kinds {
			subject, text, h := renderAll(t, r, kind, d(lang))
			dir := "ltr"
			if lang == "ar" {
				dir = "rtl"
			}
			if !strings.Contains(h, `<html lang="`+lang+`" dir="`+dir+`">`) {
				t.Errorf("%s %s: no lang and dir:\n%s", lang, kind, h)
			}
			if lang != "en" && subject == enSubject[kind] {
				t.Errorf("%s %s: English subject %q", lang, kind, subject)
			}
			if !strings.Contains(subject, "Acme") || strings.Contains(text+h, "{{") || strings.Contains(text+h, "<no value>") {
				t.Errorf("%s %s: %q\n%s", lang, kind, subject, text)
			}
			if kind == KindInvite && (subject == resetSubject || !strings.Contains(h, emailMessages[lang]["invite.button"])) {
				t.Errorf("%s: the invitation is not its own email: %q\n%s", lang, subject, h)
			}
			if kind != KindChanged && (!strings.Contains(text, link) || !strings.Contains(h, `href="`+link+`"`)) {
				t.Errorf("%s: the link is missing:\n%s\n%s", lang, text, h)
			}
			expires, _ := r.cat.Duration(lang, 90*time.Minute)
			when := testTime.Format(emailMessages[lang][i18n.KeyTimeLayout])
			if kind != KindChanged && !strings.Contains(text, expires) || kind == KindChanged && !strings.Contains(text, when) {
				t.Errorf("%s %s: no %q / %q in\n%s", lang, kind, expires, when, text)
			}
		}
	}
}

// TestInvitationLifetimeInDays: a lifetime of whole days is said in days,
// in every language, with the plural its grammar needs.
func TestInvitationLifetimeInDays(t *testing.T) {
	r, err := newRenderer("Acme", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lang string
		days int
		want string
	}{
		{"en", 7, "7 days"}, {"en", 1, "1 day"}, {"de", 7, "7 Tagen"}, {"fr", 1, "un jour"}, {"fr", 7, "7 jours"},
		{"es", 7, "7 días"}, {"pt-BR", 7, "7 dias"}, {"ja", 7, "7日"}, {"zh-Hans", 7, "7 天"},
		{"ar", 1, "يوم واحد"}, {"ar", 2, "يومين"}, {"ar", 7, "7 أيام"}, {"ar", 14, "14 يومًا"},
	} {
		d := MailData{Email: "a@b.c", Link: "https://x/?token=t", Time: testTime, ExpiresAt: testTime.Add(time.Duration(tc.days) * 24 * time.Hour), Locale: tc.lang}
		_, text, _ := renderAll(t, r, KindInvite, d)
		if !strings.Contains(text, tc.want) {
			t.Errorf("%s, %d days: no %q in\n%s", tc.lang, tc.days, tc.want, text)
		}
	}
}

func TestDurations(t *testing.T) {
	c, err := i18n.NewCatalog(emailMessages, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lang string
		d    time.Duration
		want string
	}{
		{"en", time.Hour, "1 hour"},
		{"en", 30 * time.Minute, "30 minutes"},
		{"en", 20 * time.Second, "1 minute"},
		{"en", 150 * time.Minute, "2 hours and 30 minutes"},
		{"de", time.Hour, "1 Stunde"},
		{"de", 2 * time.Hour, "2 Stunden"},
		{"fr", time.Hour, "une heure"},
		{"fr", 61 * time.Minute, "une heure et une minute"},
		{"es", 15 * time.Minute, "15 minutos"},
		{"pt-BR", time.Hour, "uma hora"},
		{"ja", 90 * time.Minute, "1時間30分"},
		{"zh-Hans", 2 * time.Hour, "2 小时"},
		{"ar", time.Hour, "ساعة واحدة"},
		{"ar", 2 * time.Hour, "ساعتين"},
		{"ar", 3 * time.Hour, "3 ساعات"},
		{"ar", 11 * time.Hour, "11 ساعة"},
		{"ar", 100 * time.Hour, "100 ساعة"},
		{"ar", 105 * time.Minute, "ساعة واحدة و45 دقيقة"},
	} {
		if got, err := c.Duration(tc.lang, tc.d); err != nil || got != tc.want {
			t.Errorf("%s %v: %q, %v; want %q", tc.lang, tc.d, got, err, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	c, err := i18n.NewCatalog(emailMessages, Messages{"pt": {"greeting": "Olá!"}})
	if err != nil {
		t.Fatal(err)
	}
	for tag, want := range map[string]string{
		"": "en", "xx": "en", "en-GB": "en", "DE": "de", "de-AT": "de", "fr-CA": "fr", "es-419": "es",
		"pt-BR": "pt-BR", "pt_br": "pt-BR", "pt-PT": "pt", "pt": "pt", "ja-JP": "ja",
		"zh": "zh-Hans", "zh-CN": "zh-Hans", "zh-Hans-CN": "zh-Hans", "zh-SG": "zh-Hans",
		"zh-TW": "en", "zh-Hant": "en", "zh-HK": "en", "ar": "ar", "ar-EG": "ar",
	} {
		if got := c.Match(tag); got != want {
			t.Errorf("Match(%q) = %q, want %q", tag, got, want)
		}
	}
}

// TestMessagesChangeOneText changes one German text, adds Italian with
// only a subject, and checks that the rest stays as shipped.
func TestMessagesChangeOneText(t *testing.T) {
	r, err := newRenderer("Acme", time.Hour, &Templates{Messages: Messages{
		"de": {"reset.button": "Los geht's"},
		"it": {"reset.subject": "Reimposta la password di {{.Product}}", "greeting": "Ciao,"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, text, h := renderAll(t, r, KindReset, MailData{Locale: "de-CH", Link: "https://a.example/r", Time: testTime})
	if !strings.Contains(h, "Los geht&#39;s") || !strings.Contains(text, "Hallo,") {
		t.Errorf("German:\n%s\n%s", text, h)
	}
	subject, text, h := renderAll(t, r, KindReset, MailData{Locale: "it", Link: "https://a.example/r", Time: testTime})
	if subject != "Reimposta la password di Acme" || !strings.HasPrefix(text, "Ciao,") ||
		!strings.Contains(text, "open this link within 1 hour") || !strings.Contains(h, `lang="it" dir="ltr"`) {
		t.Errorf("Italian: %q\n%s\n%s", subject, text, h)
	}
}

func TestTemplatesRefused(t *testing.T) {
	for _, tc := range []struct {
		t    Templates
		want string
	}{
		{Templates{ResetSubject: "{{Product}}: new password"}, "{{.Product}}"},
		{Templates{ChangedSubject: "{{.Nope}}"}, "Nope"},
		{Templates{ResetSubject: "{{.Product}}\nBcc: x@y"}, "line break"},
		{Templates{Messages: Messages{"de": {"reset.intro": "{{.Product"}}}, `reset.intro of "de"`},
		{Templates{Messages: Messages{"de": {"reset.intro": "{{.Nope}}"}}}, "Nope"},
		{Templates{Messages: Messages{"not a tag": {"greeting": "x"}}}, "BCP 47"},
	} {
		if _, err := newRenderer("Acme", time.Hour, &tc.t); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.t, err, tc.want)
		}
	}
}

func TestSubjectTemplate(t *testing.T) {
	r, err := newRenderer("Acme", time.Hour, &Templates{ResetSubject: "{{.Product}} ({{.Lang}}): new password"})
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := renderAll(t, r, KindReset, MailData{Locale: "ja", Time: testTime}); s != "Acme (ja): new password" {
		t.Errorf("subject %q", s)
	}
}

func TestTokenLen(t *testing.T) {
	if n := base64.RawURLEncoding.EncodedLen(tokenBytes); n != TokenLen {
		t.Fatalf("TokenLen = %d, want %d", TokenLen, n)
	}
}
