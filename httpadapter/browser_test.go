package httpadapter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
)

// localeUsers gives every account one locale.
type localeUsers struct {
	*resettest.Users
	locale string
}

func (u localeUsers) LookupEmail(ctx context.Context, email string) (reset.User, error) {
	usr, err := u.Users.LookupEmail(ctx, email)
	usr.Locale = u.locale
	return usr, err
}

// The browser tests drive Debian's headless Chromium with chromedp
// against a real server. Chromium resolves app.test and other.test to
// 127.0.0.1: a plain-http host that is not localhost, where Chromium
// sends no Sec-Fetch-* headers, so the page's own POST must pass the
// cross-origin check on its Origin alone. They need PASSRESET_CHROMIUM
// (or chromium on PATH) and PASSRESET_AXE (axe.min.js); scripts/chromium.sh
// installs both. Without them the tests skip, and fail when CI=true.
// PASSRESET_SCREENSHOTS=dir saves the README's screenshots there.

// browserTimeout bounds one browser test: Chromium under -race on two
// shared cores is slow, and nothing here waits on a clock.
const browserTimeout = 90 * time.Second

// browserEnv is a server on app.test and a Chromium that reaches it.
type browserEnv struct {
	*env
	t       *testing.T
	ctx     context.Context // the browser tab
	app     string          // http://app.test:PORT, or https://app.example.test:PORT
	other   string          // http://other.test:PORT (another site), or a sibling such as https://evil.example.test:PORT
	axe     string          // axe-core's source
	mu      sync.Mutex
	errs    []string          // console errors, exceptions, CSP violations
	fetch   map[string]string // Sec-Fetch-Site of the POSTs to the page, by Origin
	otherFn http.HandlerFunc  // what other.test serves
}

func needBrowser(t *testing.T) (chromium, axe string) {
	t.Helper()
	chromium = os.Getenv("PASSRESET_CHROMIUM")
	if chromium == "" {
		chromium, _ = exec.LookPath("chromium")
	}
	axe = os.Getenv("PASSRESET_AXE")
	if chromium == "" || axe == "" {
		msg := "browser tests need Chromium and axe-core: run eval \"$(scripts/chromium.sh)\" (sets PASSRESET_CHROMIUM and PASSRESET_AXE)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chromium, axe
}

func newBrowserEnv(t *testing.T, lang string, extra ...envOption) *browserEnv {
	return startBrowser(t, lang, false, "app.test", "other.test", extra...)
}

// startBrowser serves the handler on appHost and otherFn on otherHost,
// over https when tls is set (with httptest's certificate, which
// Chromium is told to accept), and opens a Chromium tab that resolves
// app.test, other.test and every name under example.test to 127.0.0.1.
func startBrowser(t *testing.T, lang string, tls bool, appHost, otherHost string, extra ...envOption) *browserEnv {
	chromium, axePath := needBrowser(t)
	axe, err := os.ReadFile(axePath)
	if err != nil {
		t.Fatal(err)
	}
	b := &browserEnv{t: t, axe: string(axe), fetch: map[string]string{}}
	b.env = newEnv(t, func(c *reset.Config, o *Options) {
		c.Product = "Acme"
		c.Users = localeUsers{c.Users.(*resettest.Users), lang}
		o.RateLimit = -1
		o.SignInURL = "/signin"
		for _, f := range extra {
			f(c, o)
		}
	})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, otherHost+":") {
			b.otherFn(w, r)
			return
		}
		if r.Method == http.MethodPost {
			b.mu.Lock()
			b.fetch[r.Header.Get("Origin")] = r.Header.Get("Sec-Fetch-Site")
			b.mu.Unlock()
		}
		b.h.ServeHTTP(w, r)
	}))
	scheme := "http://"
	if tls {
		srv.StartTLS()
		scheme = "https://"
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	b.app, b.other = scheme+appHost+port, scheme+otherHost+port

	// Not t.TempDir: Chromium's helpers may still write there when the
	// test ends, and a failed removal is no failure of the test.
	profile, err := os.MkdirTemp("", "passreset-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP app.test 127.0.0.1, MAP other.test 127.0.0.1, MAP *.example.test 127.0.0.1"),
		// httptest's certificate names example.com and 127.0.0.1 only.
		chromedp.Flag("ignore-certificate-errors", tls),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	b.ctx = ctx // the browser; newTab starts it with its first tab
	b.ctx = b.newTab(lang)
	return b
}

// newTab opens a tab in the browser of b.ctx that asks for pages in lang
// and records console errors and CSP violations; it closes when the test
// ends.
func (b *browserEnv) newTab(lang string) context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				msg = "console error"
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
		case *cdplog.EventEntryAdded:
			// A page answered with 4xx is logged as a failed resource
			// (source "network"): that is the page working as meant.
			if ev.Entry.Level == cdplog.LevelError && ev.Entry.Source != cdplog.SourceNetwork {
				msg = string(ev.Entry.Source) + ": " + ev.Entry.Text
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errs = append(b.errs, msg)
			b.mu.Unlock()
		}
	})
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		if err := cdplog.Enable().Do(ctx); err != nil {
			return err
		}
		if err := network.Enable().Do(ctx); err != nil {
			return err
		}
		if err := network.SetExtraHTTPHeaders(network.Headers{"Accept-Language": lang}).Do(ctx); err != nil {
			return err
		}
		_, err := page.AddScriptToEvaluateOnNewDocument(`window.__csp = [];
document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`).Do(ctx)
		return err
	})); err != nil {
		b.t.Fatal(err)
	}
	return ctx
}

func (b *browserEnv) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// open opens a reset link for a new token and waits for the form.
func (b *browserEnv) open(tok string) {
	b.t.Helper()
	var loc string
	b.run(chromedp.Navigate(b.app+PagePath+"?token="+tok), chromedp.WaitVisible("#newPassword", chromedp.ByID), chromedp.Location(&loc))
	if loc != b.app+PagePath || strings.Contains(loc, tok) {
		b.t.Errorf("address bar %q, want %q without the token", loc, b.app+PagePath)
	}
}

// submit types two passwords and sends the form by clicking.
func (b *browserEnv) submit(pw, confirm string, wait string) {
	b.t.Helper()
	b.run(
		chromedp.SendKeys("#newPassword", pw, chromedp.ByID),
		chromedp.SendKeys("#confirmPassword", confirm, chromedp.ByID),
	)
	b.next(chromedp.Click(`button[type=submit]`, chromedp.ByQuery), wait)
}

// next does what leaves the page (a click, Enter) and waits for the next
// page to show sel: it marks the current document and waits for one
// without the mark, so that it never finds sel on the page it left.
func (b *browserEnv) next(act chromedp.Action, sel string) {
	b.t.Helper()
	b.run(
		chromedp.SetAttributeValue("html", "data-left", "1", chromedp.ByQuery),
		act,
		chromedp.WaitReady("html:not([data-left])", chromedp.ByQuery),
		chromedp.WaitVisible(sel, chromedp.ByQuery),
	)
}

// check runs the checks every page state must pass: lang and dir, no
// console error or CSP violation, no sideways scroll, and zero axe-core
// violations at WCAG 2.1 AA.
func (b *browserEnv) check(state, lang string) {
	b.t.Helper()
	var got struct {
		Lang, Dir string
		CSP       []string
		Wide      bool
	}
	b.run(chromedp.Evaluate(`({Lang: document.documentElement.lang, Dir: document.documentElement.dir,
		CSP: window.__csp || [], Wide: document.documentElement.scrollWidth > window.innerWidth})`, &got))
	dir := "ltr"
	if lang == "ar" {
		dir = "rtl"
	}
	if got.Lang != lang || got.Dir != dir || len(got.CSP) > 0 || got.Wide {
		b.t.Errorf("%s: lang %q dir %q, CSP violations %v, scrolls sideways %v", state, got.Lang, got.Dir, got.CSP, got.Wide)
	}
	b.mu.Lock()
	if len(b.errs) > 0 {
		b.t.Errorf("%s: console: %v", state, b.errs)
		b.errs = nil
	}
	b.mu.Unlock()
	var violations []string
	b.run(
		chromedp.Evaluate(b.axe, nil),
		chromedp.Evaluate(`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
			.then(r => r.violations.map(v => v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).join(", ")))`,
			&violations, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	if len(violations) > 0 {
		b.t.Errorf("%s: axe-core: %v", state, violations)
	}
}

func (b *browserEnv) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// viewport sets the size of the page; phone sizes are mobile.
func (b *browserEnv) viewport(w, h int64) {
	b.t.Helper()
	b.run(emulation.SetDeviceMetricsOverride(w, h, 1, w < 600))
}

// shot saves a screenshot as dir/name.png when PASSRESET_SCREENSHOTS is set.
func (b *browserEnv) shot(name string) {
	b.t.Helper()
	dir := os.Getenv("PASSRESET_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	// A tab behind another draws no frame to capture: bring it forward.
	b.run(page.BringToFront(), chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

var browserLangs = []string{"en", "ja", "ar"}

// TestBrowserReset is what a person does: open the link, make mistakes,
// set the password; then the used, replaced and expired links.
func TestBrowserReset(t *testing.T) {
	for _, lang := range browserLangs {
		t.Run(lang, func(t *testing.T) {
			b := newBrowserEnv(t, lang)
			tok := b.issue()
			b.open(tok)
			b.check("form", lang)
			b.shot("form-" + lang)

			b.submit("a new long password", "a different password", "#form-error")
			if got := b.text("#form-error"); got != PageMessages()[lang]["form.mismatch"] {
				t.Errorf("mismatch: %q", got)
			}
			var described string
			b.run(chromedp.AttributeValue("#newPassword", "aria-describedby", &described, nil, chromedp.ByID))
			if !strings.Contains(described, "form-error") {
				t.Errorf("the error is not tied to the field: aria-describedby=%q", described)
			}
			b.check("mismatch", lang)
			b.shot("error-" + lang)

			// The default screening, in the page's language; the link
			// keeps working after each refusal.
			for pw, key := range map[string]string{
				"I love Acme so much":       "form.context", // the product name
				"I am jborder, remember me": "form.context", // the email's local part
				"password1234567":           "form.common",
				"Password1234567!":          "form.common",
			} {
				b.submit(pw, pw, "#form-error")
				if got := b.text("#form-error"); got != PageMessages()[lang][key] {
					t.Errorf("%q refused with %q, want %s", pw, got, key)
				}
			}
			b.check("refused", lang)

			b.submit("correct horse battery", "correct horse battery", "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["done.title"] {
				t.Errorf("done: %q", got)
			}
			b.check("done", lang)
			b.shot("done-" + lang)
			if got := b.users.Password("u1"); got != "correct horse battery" {
				t.Fatalf("password %q", got)
			}
			b.mu.Lock()
			if sfs, ok := b.fetch[b.app]; !ok || sfs != "" {
				t.Errorf("the form's POST: Origin %v, Sec-Fetch-Site %q; want the page's origin and none", b.fetch, sfs)
			}
			b.mu.Unlock()

			// The used link.
			b.run(chromedp.Navigate(b.app+PagePath+"?token="+tok), chromedp.WaitVisible("h1", chromedp.ByQuery))
			if got := b.text("h1"); got != PageMessages()[lang]["invalid.title"] {
				t.Errorf("used link: %q", got)
			}
			b.check("used", lang)
			// A replaced link.
			old := b.issue()
			b.issue()
			b.run(chromedp.Navigate(b.app+PagePath+"?token="+old), chromedp.WaitVisible("h1", chromedp.ByQuery))
			if got := b.text("h1"); got != PageMessages()[lang]["invalid.title"] {
				t.Errorf("replaced link: %q", got)
			}
			// An expired link.
			exp := b.issue()
			b.clock.Advance(time.Hour)
			b.run(chromedp.Navigate(b.app+PagePath+"?token="+exp), chromedp.WaitVisible("h1", chromedp.ByQuery))
			if got := b.text("h1"); got != PageMessages()[lang]["expired.title"] {
				t.Errorf("expired link: %q", got)
			}
			b.check("expired", lang)
		})
	}
}

// TestBrowserForgotAndKeyboard uses the forgot form and the reset form
// with the keyboard only: the tab order, a visible focus, Enter submits.
func TestBrowserForgotAndKeyboard(t *testing.T) {
	for _, lang := range browserLangs {
		t.Run(lang, func(t *testing.T) {
			b := newBrowserEnv(t, lang)
			b.run(chromedp.Navigate(b.app+ForgotPath), chromedp.WaitVisible("#email", chromedp.ByID))
			b.check("forgot", lang)
			b.next(chromedp.SendKeys("#email", knownEmail+"\r", chromedp.ByID), "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["sent.title"] {
				t.Errorf("sent: %q", got)
			}
			b.check("sent", lang)

			b.open(b.issue())
			var order []string
			for range 3 {
				var id string
				var outline string
				b.run(chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(`document.activeElement.id || document.activeElement.tagName`, &id),
					chromedp.Evaluate(`getComputedStyle(document.activeElement).outlineStyle`, &outline))
				if outline == "none" {
					t.Errorf("no visible focus on %s", id)
				}
				order = append(order, id)
			}
			if want := []string{"newPassword", "confirmPassword", "BUTTON"}; strings.Join(order, " ") != strings.Join(want, " ") {
				t.Errorf("tab order %v, want %v", order, want)
			}
			b.run(chromedp.Focus("#newPassword", chromedp.ByID), chromedp.SendKeys("#newPassword", "correct horse battery", chromedp.ByID))
			b.next(chromedp.SendKeys("#confirmPassword", "correct horse battery\r", chromedp.ByID), "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["done.title"] {
				t.Errorf("Enter: %q", got)
			}
		})
	}
}

// TestBrowserPhoneAndNoScript sets a password on a phone-sized screen with
// JavaScript off.
func TestBrowserPhoneAndNoScript(t *testing.T) {
	for _, lang := range browserLangs {
		t.Run(lang, func(t *testing.T) {
			b := newBrowserEnv(t, lang)
			b.viewport(375, 667)
			tok := b.issue()
			b.open(tok)
			b.check("phone form", lang)
			b.shot("form-phone-" + lang)
			b.submit("a new long password", "a different password", "#form-error")
			b.check("phone error", lang)
			b.shot("error-phone-" + lang)
			b.run(chromedp.Navigate(b.app+ForgotPath), chromedp.WaitVisible("#email", chromedp.ByID))
			b.check("phone forgot", lang)

			b.run(emulation.SetScriptExecutionDisabled(true))
			b.open(b.issue())
			b.submit("correct horse battery", "correct horse battery", "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["done.title"] {
				t.Errorf("without JavaScript: %q", got)
			}
			if got := b.users.Password("u1"); got != "correct horse battery" {
				t.Errorf("without JavaScript: password %q", got)
			}
		})
	}
}

// TestBrowserCrossOrigin posts the reset form from another site and from
// a sandboxed page (Origin: null): both are refused, and nothing changes.
func TestBrowserCrossOrigin(t *testing.T) {
	b := newBrowserEnv(t, "en")
	tok := b.issue()
	b.open(tok) // the person's browser holds the cookie
	b.otherFn = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sandboxed" {
			w.Header().Set("Content-Security-Policy", "sandbox allow-forms")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>other</title><form method="post" action="%s/reset">
<input name="token" value="%s"><input name="newPassword" value="hijacked password"><input name="confirmPassword" value="hijacked password">
<button type="submit">go</button></form>`, b.app, tok)
	}
	for _, p := range []string{"/", "/sandboxed"} {
		b.run(chromedp.Navigate(b.other+p), chromedp.WaitVisible("button", chromedp.ByQuery))
		b.next(chromedp.Click("button", chromedp.ByQuery), "h1")
		if got := b.text("h1"); got != PageMessages()["en"]["error.title"] || !strings.Contains(b.text("[role=alert]"), "another site") {
			t.Errorf("%s: %q", p, got)
		}
	}
	b.mu.Lock()
	if _, ok := b.fetch["null"]; !ok {
		t.Errorf("no POST with Origin: null was seen: %v", b.fetch)
	}
	if _, ok := b.fetch[b.other]; !ok {
		t.Errorf("no POST from the other site was seen: %v", b.fetch)
	}
	b.errs = nil
	b.mu.Unlock()
	if b.users.Password("u1") != oldPassword {
		t.Fatal("a cross-origin POST changed the password")
	}
	if _, err := b.svc.Inspect(context.Background(), tok); err != nil {
		t.Fatalf("a cross-origin POST used the token: %v", err)
	}
}

// TestBrowserEmails renders both default emails in the browser, as a
// webmail on another site would show them: the link is there, a click on
// it opens the form (a navigation from another site, which the token
// cookie must survive), and the layout holds on a narrow screen.
func TestBrowserEmails(t *testing.T) {
	for _, lang := range browserLangs {
		t.Run(lang, func(t *testing.T) {
			b := newBrowserEnv(t, lang)
			if _, err := b.svc.RequestTrusted(context.Background(), reset.TrustedRequest{Email: knownEmail, Wait: true}); err != nil {
				t.Fatal(err)
			}
			msgs := b.mail.Messages()
			mail := strings.ReplaceAll(msgs[len(msgs)-1].HTML, testResetURL, b.app+PagePath)
			b.otherFn = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprint(w, mail)
			}
			b.viewport(320, 640)
			b.run(chromedp.Navigate(b.other+"/mail"), chromedp.WaitVisible("a", chromedp.ByQuery))
			b.check("reset email", lang)
			b.shot("email-reset-" + lang)
			var href string
			b.run(chromedp.AttributeValue("a", "href", &href, nil, chromedp.ByQuery))
			if !strings.HasPrefix(href, b.app+PagePath+"?token=") {
				t.Fatalf("link %q", href)
			}
			b.next(chromedp.Click("a", chromedp.ByQuery), "#newPassword")
			b.submit("correct horse battery", "correct horse battery", "h1")
			if got := b.text("h1"); got != PageMessages()[lang]["done.title"] {
				t.Errorf("after the email's link: %q", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
			defer cancel()
			notice, err := b.mail.Wait(ctx, len(msgs)+1)
			if err != nil {
				t.Fatal(err)
			}
			mail = notice[len(notice)-1].HTML
			b.run(chromedp.Navigate(b.other+"/notice"), chromedp.WaitVisible("p", chromedp.ByQuery))
			b.check("changed email", lang) // the notice speaks the account's language too
		})
	}
}
