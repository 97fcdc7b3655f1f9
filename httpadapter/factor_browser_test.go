package httpadapter

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSecondFactor: an account with a second factor is asked for
// its code on the same form, and "sign out of all devices" is offered,
// ticked; a wrong code is refused on the code field, an unticked box
// keeps the other sessions, a ticked one ends them. Every state passes
// axe-core.
func TestBrowserSecondFactor(t *testing.T) {
	for _, lang := range browserLangs {
		t.Run(lang, func(t *testing.T) {
			b := newBrowserEnv(t, lang, withFactor("246810"))
			texts := PageMessages()[lang]
			b.open(b.issue())
			var attrs map[string]string
			var ticked bool
			b.run(chromedp.Attributes("#secondFactorCode", &attrs, chromedp.ByID),
				chromedp.Evaluate(`document.getElementById("endSessions").checked`, &ticked))
			if attrs["autocomplete"] != "one-time-code" || attrs["inputmode"] != "numeric" || !ticked {
				t.Errorf("code field %v, box ticked %v", attrs, ticked)
			}
			if got := b.text(`label[for=endSessions]`); got != texts["form.endSessions"] {
				t.Errorf("box label %q", got)
			}
			b.check("form with code", lang)

			b.run(chromedp.SendKeys("#secondFactorCode", "111111", chromedp.ByID))
			b.submit("a new long password", "a new long password", "#form-error")
			if got := b.text("#form-error"); got != texts["form.codeWrong"] {
				t.Errorf("wrong code: %q", got)
			}
			var described string
			b.run(chromedp.AttributeValue("#secondFactorCode", "aria-describedby", &described, nil, chromedp.ByID))
			if described != "secondFactorCode-hint form-error" {
				t.Errorf("the error is not tied to the code field: aria-describedby=%q", described)
			}
			b.check("wrong code", lang)
			if b.users.Password("u1") != oldPassword {
				t.Fatal("a wrong code changed the password")
			}

			// Untick the box, give the right code.
			b.run(chromedp.Click("#endSessions", chromedp.ByID), chromedp.SendKeys("#secondFactorCode", "246810", chromedp.ByID))
			b.submit("a new long password", "a new long password", "h1")
			if got := b.text("h1"); got != texts["done.title"] {
				t.Errorf("done: %q", got)
			}
			if b.users.Password("u1") != "a new long password" || b.users.Ended("u1") != 0 {
				t.Fatalf("password %q, sessions ended %d times; want changed and kept", b.users.Password("u1"), b.users.Ended("u1"))
			}

			// Again with the box as it comes: the sessions end.
			b.open(b.issue())
			b.run(chromedp.SendKeys("#secondFactorCode", "246810", chromedp.ByID))
			b.submit("another long password", "another long password", "h1")
			if b.users.Ended("u1") != 1 {
				t.Fatalf("sessions ended %d times, want 1", b.users.Ended("u1"))
			}
		})
	}
}
