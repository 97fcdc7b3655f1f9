package httpadapter

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/internal/i18n"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
)

var shippedLangs = []string{"ar", "de", "en", "es", "fr", "ja", "pt-BR", "zh-Hans"}

// TestPageMessagesComplete fails on any text missing from a shipped
// language, and on a key English does not have.
func TestPageMessagesComplete(t *testing.T) {
	if got := slices.Sorted(maps.Keys(PageMessages())); !slices.Equal(got, shippedLangs) {
		t.Errorf("languages %v, want %v", got, shippedLangs)
	}
	for lang, texts := range PageMessages() {
		for k := range PageMessages()["en"] {
			if strings.TrimSpace(texts[k]) == "" {
				t.Errorf("%s: missing %q", lang, k)
			}
		}
		for k := range texts {
			if _, ok := PageMessages()["en"][k]; !ok {
				t.Errorf("%s: %q is not a key of English", lang, k)
			}
		}
	}
	if _, err := i18n.NewCatalog(PageMessages(), nil); err != nil {
		t.Fatal(err)
	}
}

// pageStates returns every state of the hosted pages a person can meet,
// each as a function that produces it with Accept-Language lang.
func pageStates(e *env) map[string]func(lang string) *httptest.ResponseRecorder {
	get := func(path, lang string, c *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Accept-Language", lang)
		if c != nil {
			r.AddCookie(c)
		}
		return e.do(public, r)
	}
	post := func(path, lang string, v url.Values, hdr ...string) *httptest.ResponseRecorder {
		return e.postForm(path, v, append([]string{"Accept-Language", lang}, hdr...)...)
	}
	cookie := func(tok string) *http.Cookie { return &http.Cookie{Name: plainCookieName, Value: tok} }
	return map[string]func(string) *httptest.ResponseRecorder{
		"form":  func(l string) *httptest.ResponseRecorder { return get(PagePath, l, cookie(e.issue())) },
		"empty": func(l string) *httptest.ResponseRecorder { return post(PagePath, l, form(e.issue(), "", "")) },
		"mismatch": func(l string) *httptest.ResponseRecorder {
			return post(PagePath, l, form(e.issue(), "a long password", "b long password"))
		},
		"short": func(l string) *httptest.ResponseRecorder { return post(PagePath, l, form(e.issue(), "short", "short")) },
		"refused": func(l string) *httptest.ResponseRecorder {
			long := strings.Repeat("x", password.Max+1)
			return post(PagePath, l, form(e.issue(), long, long))
		},
		"invalid": func(l string) *httptest.ResponseRecorder { return get(PagePath, l, cookie("nope")) },
		"expired": func(l string) *httptest.ResponseRecorder {
			tok := e.issue()
			e.clock.Advance(time.Hour)
			return get(PagePath, l, cookie(tok))
		},
		"done": func(l string) *httptest.ResponseRecorder {
			return post(PagePath, l, form(e.issue(), "a new long password", "a new long password"))
		},
		"invitation": func(l string) *httptest.ResponseRecorder { return get(PagePath, l, cookie(e.invite(knownEmail))) },
		"invitation-mismatch": func(l string) *httptest.ResponseRecorder {
			return post(PagePath, l, form(e.invite(knownEmail), "a long password", "b long password"))
		},
		"invitation-done": func(l string) *httptest.ResponseRecorder {
			return post(PagePath, l, form(e.invite(knownEmail), "a new long password", "a new long password"))
		},
		"replaced": func(l string) *httptest.ResponseRecorder {
			v := url.Values{"binding": {formBinding(e.issue())}, "newPassword": {"a long password"}, "confirmPassword": {"a long password"}}
			r := httptest.NewRequest(http.MethodPost, PagePath, strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Accept-Language", l)
			r.AddCookie(cookie(e.issueFor(otherEmail)))
			return e.do(public, r)
		},
		"ambiguous": func(l string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodGet, PagePath, nil)
			r.Header.Set("Accept-Language", l)
			r.AddCookie(cookie(e.issue()))
			r.AddCookie(cookie(e.issueFor(otherEmail)))
			return e.do(public, r)
		},
		"forgot":     func(l string) *httptest.ResponseRecorder { return get(ForgotPath, l, nil) },
		"forgot-bad": func(l string) *httptest.ResponseRecorder { return post(ForgotPath, l, url.Values{"email": {"no"}}) },
		"sent": func(l string) *httptest.ResponseRecorder {
			return post(ForgotPath, l, url.Values{"email": {"x@example.com"}})
		},
		"cross-site": func(l string) *httptest.ResponseRecorder {
			return post(PagePath, l, form("x", "a", "a"), "Sec-Fetch-Site", "cross-site")
		},
		"method": func(l string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPut, PagePath, nil)
			r.Header.Set("Accept-Language", l)
			return e.do(public, r)
		},
		"too-large": func(l string) *httptest.ResponseRecorder {
			return post(PagePath, l, form("x", strings.Repeat("a", MaxBodyBytes), ""))
		},
		"media-type": func(l string) *httptest.ResponseRecorder {
			return post(PagePath, l, nil, "Content-Type", "text/plain")
		},
		"bad-form": func(l string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, PagePath, strings.NewReader("a=%zz"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Accept-Language", l)
			return e.do(public, r)
		},
		"unavailable": func(l string) *httptest.ResponseRecorder { return e.unavailable(l) },
	}
}

// unavailable renders the page of a failing back end.
func (e *env) unavailable(lang string) *httptest.ResponseRecorder {
	tok := e.issue()
	e.users.SetErr(errFake)
	defer e.users.SetErr(nil)
	return e.postForm(PagePath, form(tok, "a new long password", "a new long password"), "Accept-Language", lang)
}

// TestPagesEveryLanguage renders every page state in every shipped
// language and checks that it is that language's, not English.
func TestPagesEveryLanguage(t *testing.T) {
	e := newEnv(t, func(c *reset.Config, o *Options) { c.Product = "Acme"; o.RateLimit = -1 })
	english := map[string]string{}
	for _, lang := range append([]string{"en"}, shippedLangs...) {
		for name, state := range pageStates(e) {
			w := state(lang)
			body := w.Body.String()
			dir := "ltr"
			if lang == "ar" {
				dir = "rtl"
			}
			if !strings.Contains(body, `<html lang="`+lang+`" dir="`+dir+`">`) || w.Header().Get("Content-Language") != lang {
				t.Errorf("%s %s: %d, no lang %s\n%s", lang, name, w.Code, lang, body)
			}
			if strings.Contains(body, "<no value>") || strings.Contains(body, "{{") || w.Code == 500 ||
				name == "bad-form" && (w.Code != 400 || !strings.Contains(body, PageMessages()[lang]["error.badForm"])) {
				t.Errorf("%s %s: %d\n%s", lang, name, w.Code, body)
			}
			h1 := body[strings.Index(body, "<h1>"):]
			h1 = h1[:strings.Index(h1, "</h1>")]
			alert := ""
			if i := strings.Index(body, `role="alert">`); i >= 0 {
				alert = body[i : i+strings.Index(body[i:], "</p>")]
			}
			if lang == "en" {
				english[name] = h1 + alert
			} else if english[name] == h1+alert {
				t.Errorf("%s %s: English texts %q", lang, name, h1+alert)
			}
		}
	}
}

func TestPageLanguageNegotiation(t *testing.T) {
	e := newEnv(t, func(c *reset.Config, _ *Options) {
		c.Templates = &reset.Templates{Messages: reset.Messages{
			"de": {"forgot.title": "Passwort vergessen?"},
			"it": {"forgot.title": "Reimposta la password"},
		}}
	})
	for al, want := range map[string]string{
		"":                          "en",
		"xx":                        "en",
		"de-CH, en;q=0.5":           "de",
		"fr-CA":                     "fr",
		"pt-PT":                     "pt-BR",
		"zh-CN,zh;q=0.9":            "zh-Hans",
		"ar-EG":                     "ar",
		"it":                        "it",
		"ja;q=0.4, es;q=0.8":        "es",
		"this is not a header;q=x ": "en",
	} {
		r := httptest.NewRequest(http.MethodGet, ForgotPath, nil)
		r.Header.Set("Accept-Language", al)
		w := e.do(public, r)
		if got := w.Header().Get("Content-Language"); got != want {
			t.Errorf("Accept-Language %q: %s, want %s", al, got, want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, ForgotPath, nil)
	r.Header.Set("Accept-Language", "de")
	if body := e.do(public, r).Body.String(); !strings.Contains(body, "<h1>Passwort vergessen?</h1>") || !strings.Contains(body, "E-Mail-Adresse") {
		t.Errorf("changed German text:\n%s", body)
	}
	r.Header.Set("Accept-Language", "it")
	if body := e.do(public, r).Body.String(); !strings.Contains(body, "<h1>Reimposta la password</h1>") || !strings.Contains(body, "Email address") {
		t.Errorf("added Italian:\n%s", body)
	}
}

// TestForgotPageSameAnswerEveryLanguage: in any language, the answer does
// not tell a known address from an unknown one.
func TestForgotPageSameAnswerEveryLanguage(t *testing.T) {
	e := newEnv(t, func(c *reset.Config, _ *Options) { c.Cooldown = -1 })
	strip := func(s string) string { return nonceAttr.ReplaceAllString(s, "") }
	for _, lang := range shippedLangs {
		known := e.postForm(ForgotPath, url.Values{"email": {knownEmail}}, "Accept-Language", lang)
		unknown := e.postForm(ForgotPath, url.Values{"email": {"nobody@anywhere.com"}}, "Accept-Language", lang)
		if known.Code != unknown.Code || strip(known.Body.String()) != strip(unknown.Body.String()) ||
			!maps.EqualFunc(known.Header(), unknown.Header(), func(a, b []string) bool { return len(a) == len(b) }) {
			t.Errorf("%s: known and unknown differ:\n%s\n%s", lang, known.Body, unknown.Body)
		}
	}
}

// TestPageMessagesChangeOneTextAndAddALanguage is the documented way to
// change the pages' texts: reset.Templates.Messages changes one German
// text and adds Italian with one text, the rest stays as shipped; a change
// to the caller's map after reset.New, or to the copy PageMessages
// returns, reaches no page.
func TestPageMessagesChangeOneTextAndAddALanguage(t *testing.T) {
	changes := reset.Messages{
		"de": {"sent.title": "Schauen Sie in Ihr Postfach"},
		"it": {"sent.title": "Controlla la tua email"},
	}
	e := newEnv(t, func(c *reset.Config, o *Options) { c.Templates = &reset.Templates{Messages: changes}; o.RateLimit = -1 })
	changes["de"]["sent.title"] = "changed after New"
	shipped := PageMessages()
	shipped["en"]["sent.title"] = "changed through PageMessages"
	shipped["fr"] = nil
	if PageMessages()["en"]["sent.title"] != "Check your email" || PageMessages()["fr"] == nil {
		t.Fatal("PageMessages returned the shipped map, not a copy")
	}
	for lang, want := range map[string][]string{
		"de": {"<h1>Schauen Sie in Ihr Postfach</h1>", "Wenn ein Konto diese E-Mail-Adresse verwendet"},
		"it": {"<h1>Controlla la tua email</h1>", "If an account uses this email address", `<html lang="it" dir="ltr">`},
		"en": {"<h1>Check your email</h1>"},
		"fr": {"<h1>Consultez votre messagerie</h1>"},
	} {
		body := e.postForm(ForgotPath, url.Values{"email": {"x@example.com"}}, "Accept-Language", lang).Body.String()
		for _, s := range want {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the page lacks %q:\n%s", lang, s, body)
			}
		}
		if strings.Contains(body, "changed") {
			t.Errorf("%s: a change made after New reached the page:\n%s", lang, body)
		}
	}
}
