package httpadapter

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// These tests play a sibling subdomain (evil.example.test) that tosses
// token cookies for the parent domain at the reset page on
// app.example.test, and a person with two reset links open in two tabs.

// plant has the sibling site set cookies for the parent domain: the
// browser visits it and gets the Set-Cookie lines as they are.
func (b *browserEnv) plant(setCookies ...string) {
	b.t.Helper()
	b.otherFn = func(w http.ResponseWriter, r *http.Request) {
		for _, c := range setCookies {
			w.Header().Add("Set-Cookie", c)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>sibling</title><p>hello</p>`)
	}
	b.run(chromedp.Navigate(b.other+"/plant"), chromedp.WaitVisible("p", chromedp.ByQuery))
}

// cookies returns the cookies the browser would send to the reset page.
func (b *browserEnv) cookies() []*network.Cookie {
	b.t.Helper()
	var cs []*network.Cookie
	b.run(chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cs, err = network.GetCookies().WithURLs([]string{b.app + PagePath}).Do(ctx)
		return err
	}))
	return cs
}

// planted reports whether the browser holds a cookie of name for the
// parent domain, set by the sibling.
func planted(cs []*network.Cookie, name string) bool {
	for _, c := range cs {
		if c.Name == name && strings.TrimPrefix(c.Domain, ".") == "example.test" {
			return true
		}
	}
	return false
}

// account returns the address the form page shows, or "" on another page.
func (b *browserEnv) account() string {
	b.t.Helper()
	var v string
	b.run(chromedp.Evaluate(`(document.querySelector("input[name=username]") || {}).value || ""`, &v))
	return v
}

// tossed are the Set-Cookie lines of a sibling that wants its value to
// decide the reset page's account: the plain name at the page's path
// (Secure too, where the sibling is on https) and at the root, and the __Host- names (exact, lower case, and as a
// nameless cookie) that a browser must refuse from a sibling.
func tossed(value string) []string {
	const attrs = "; Domain=example.test; SameSite=Lax; Max-Age=86400"
	return []string{
		"passreset_token=" + value + "; Path=" + PagePath + attrs,
		"passreset_token=" + value + "; Path=" + PagePath + "; Secure" + attrs, // replaces the one above over https
		"passreset_token=" + value + "; Path=/" + attrs,
		"__Host-passreset_token=" + value + "; Path=/; Secure" + attrs,
		"__host-passreset_token=" + value + "; Path=/; Secure" + attrs,
		"=__Host-passreset_token=" + value + "; Path=/; Secure" + attrs,
	}
}

// TestBrowserCookieTossing has a sibling subdomain plant token cookies
// for the parent domain over https, first with a working token of the
// attacker's own account, then with junk: the person's own fresh link
// still shows the person's own account and sets the person's password.
func TestBrowserCookieTossing(t *testing.T) {
	b := startBrowser(t, "en", true, "app.example.test", "evil.example.test")
	for _, c := range []struct{ name, value string }{
		{"attacker's token", b.issueFor(otherEmail)},
		{"junk", "junk"},
	} {
		b.plant(tossed(c.value)...)
		cs := b.cookies()
		if !planted(cs, "passreset_token") {
			t.Fatalf("%s: the sibling's cookie was not planted, the test proves nothing: %v", c.name, cs)
		}
		if planted(cs, "__Host-passreset_token") {
			t.Errorf("%s: Chromium took a __Host- cookie for the parent domain", c.name)
		}
		tok := b.issue()
		b.run(chromedp.Navigate(b.app+PagePath+"?token="+tok), chromedp.WaitVisible("h1", chromedp.ByQuery))
		if got := b.account(); got != knownEmail {
			t.Errorf("%s: the person's own link shows %q (page %q), want the form for %s",
				c.name, got, b.text("h1"), knownEmail)
			continue
		}
		b.check("form after tossing", "en")
		b.submit("correct horse battery", "correct horse battery", "h1")
		if got := b.text("h1"); got != PageMessages()["en"]["done.title"] {
			t.Errorf("%s: after submit: %q", c.name, got)
		}
		if b.users.Password("u1") != "correct horse battery" || b.users.Password("u2") != otherOld {
			t.Fatalf("%s: passwords u1 %q, u2 %q", c.name, b.users.Password("u1"), b.users.Password("u2"))
		}
		b.users.Add("u1", knownEmail, oldPassword) // back to the start
	}
}

// TestBrowserCookieTossingPlainHTTP plays the same sibling against the
// plain-http development case, where no cookie prefix protects the name:
// the person's own link never shows the attacker's account; the page
// explains, clears the sibling's cookies, and the link opened again works.
func TestBrowserCookieTossingPlainHTTP(t *testing.T) {
	for _, lang := range browserLangs {
		t.Run(lang, func(t *testing.T) {
			b := startBrowser(t, lang, false, "app.example.test", "evil.example.test")
			b.plant(tossed(b.issueFor(otherEmail))...)
			if !planted(b.cookies(), "passreset_token") {
				t.Fatal("the sibling's cookie was not planted, the test proves nothing")
			}
			tok := b.issue()
			b.run(chromedp.Navigate(b.app+PagePath+"?token="+tok), chromedp.WaitVisible("h1", chromedp.ByQuery))
			switch got := b.account(); got {
			case knownEmail: // the page could tell
			case "":
				if h1 := b.text("h1"); h1 != PageMessages()[lang]["ambiguous.title"] {
					t.Fatalf("own link with a tossed cookie: %q, want the form or the explanation", h1)
				}
				b.check("ambiguous", lang)
				b.shot("ambiguous-" + lang)
				b.run(chromedp.Navigate(b.app+PagePath+"?token="+tok), chromedp.WaitVisible("h1", chromedp.ByQuery))
				if got := b.account(); got != knownEmail {
					t.Fatalf("the link opened again shows %q (page %q), want the form for %s", got, b.text("h1"), knownEmail)
				}
			default:
				t.Fatalf("the person's own link shows the account %q", got)
			}
			b.submit("correct horse battery", "correct horse battery", "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["done.title"] {
				t.Errorf("after submit: %q", got)
			}
			if b.users.Password("u1") != "correct horse battery" || b.users.Password("u2") != otherOld {
				t.Fatalf("passwords u1 %q, u2 %q", b.users.Password("u1"), b.users.Password("u2"))
			}
		})
	}
}

// TestBrowserSecondTab opens a link in one tab and another account's link
// in a second tab: the first tab's form, now facing the second link's
// cookie, answers that its link was replaced and changes nothing; the
// second tab's form works, and so does the first link opened again.
func TestBrowserSecondTab(t *testing.T) {
	for _, lang := range browserLangs {
		t.Run(lang, func(t *testing.T) {
			b := startBrowser(t, lang, true, "app.example.test", "evil.example.test")
			tok1, tok2 := b.issue(), b.issueFor(otherEmail)
			b.open(tok1)
			first := b.ctx
			second := b.newTab(lang) // in the same browser, with the same cookies
			b.ctx = second
			b.open(tok2)
			if got := b.account(); got != otherEmail {
				t.Fatalf("second tab shows %q", got)
			}
			b.ctx = first
			b.submit("correct horse battery", "correct horse battery", "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["replaced.title"] {
				t.Errorf("first tab after the second link: %q, want %q", got, PageMessages()[lang]["replaced.title"])
			}
			if b.users.Password("u1") != oldPassword || b.users.Password("u2") != otherOld {
				t.Fatalf("the replaced form changed a password: u1 %q, u2 %q", b.users.Password("u1"), b.users.Password("u2"))
			}
			for _, tok := range []string{tok1, tok2} {
				if _, err := b.svc.Inspect(context.Background(), tok); err != nil {
					t.Fatalf("the replaced form used a token: %v", err)
				}
			}
			b.check("replaced", lang)
			b.shot("replaced-" + lang)

			b.ctx = second
			b.submit("second tab password", "second tab password", "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["done.title"] || b.users.Password("u2") != "second tab password" {
				t.Errorf("second tab: %q, u2 %q", got, b.users.Password("u2"))
			}
			b.ctx = first
			b.open(tok1)
			b.submit("correct horse battery", "correct horse battery", "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["done.title"] || b.users.Password("u1") != "correct horse battery" {
				t.Errorf("first link opened again: %q, u1 %q", got, b.users.Password("u1"))
			}
		})
	}
}
