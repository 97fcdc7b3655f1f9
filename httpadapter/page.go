package httpadapter

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/passreset/passreset/internal/i18n"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
)

// Names of the hosted page templates; see [Options.Pages].
const (
	PageForm    = "form"    // choose a new password (GET with a working link, or a refused POST)
	PageInvalid = "invalid" // the link is invalid, used, replaced or expired; the form's link was replaced; several token cookies
	PageDone    = "done"    // the password was changed
	PageForgot  = "forgot"  // ask for a new link
	PageSent    = "sent"    // the same answer for every address asked for
	PageError   = "error"   // anything else: 403, 405, 413, 415, 429, 503
)

// PageData is what a hosted page template receives.
type PageData struct {
	Product string // the Service's product name ([reset.Config.Product])
	// Lang is the page's language, negotiated from the request's
	// Accept-Language among those of [PageMessages] and the Service's
	// [reset.Templates.Messages]; Dir is its direction, "ltr" or "rtl".
	// {{.T "key"}} inserts one of its texts.
	Lang, Dir string
	// Nonce is the CSP nonce a <style> element needs: <style nonce="{{.Nonce}}">.
	Nonce string

	// Action is where the new-password form posts, relative to the page.
	Action string
	// Token is the confirmation token. The built-in form does not post
	// it: opening a link moves the token into a cookie (see
	// [Handler]), which the form's POST carries. A replacement form may
	// post it in a hidden "token" field instead.
	Token string
	// Binding ties the form to the link it was rendered for. A form that
	// relies on the cookie must post it in a hidden "binding" field: when
	// the cookie holds another link's token by the time the form is sent
	// (the person opened a second link in another tab), the page answers
	// that the form's link was replaced and changes nothing. A form
	// without it is refused (400).
	Binding string
	// Email is the address of the account the link resets (form page).
	Email string
	// Invitation says that the link is an invitation
	// ([reset.PurposeInvite]) rather than a reset (form and done pages):
	// the built-in pages then use the "invitation.*" texts, "Choose your
	// password" rather than "Choose a new password".
	Invitation bool
	// ExpiresAt is when the link stops working (form page).
	ExpiresAt time.Time
	// MinLength is the shortest password the Service's policy accepts
	// (found by asking it once), for the minlength attribute; 0 if unknown.
	MinLength int
	// Error says why the last submission was refused (form and forgot
	// pages), in the page's language: passwords that differ, or the
	// policy's reason.
	Error string
	// Reason is the policy's reason for refusing the password, as the
	// policy gave it ([password.Error]), for the "form.refused" text.
	Reason string
	// CodeError says that Error is about the second-factor code rather
	// than the new password (form page).
	CodeError bool
	// SecondFactor says that the account has a second factor: the form
	// asks for its code in a "secondFactorCode" field.
	SecondFactor bool
	// EndsSessions says that the Service ends the account's other
	// sessions ([reset.Config.EndSessions] is set): the form offers a
	// "sign out of all devices" checkbox, "endSessions", checked unless
	// KeepSessions. A form that offers it also posts a hidden "sessions"
	// field, so that an unchecked box is told from a form without one.
	EndsSessions bool
	// KeepSessions is the person's choice, on a refused submission, to
	// stay signed in elsewhere.
	KeepSessions bool
	// Limit is the length limit a refused password broke
	// ([password.Error]), for the "form.long" text.
	Limit int

	// Expired tells an expired link from an invalid one (invalid page).
	Expired bool
	// Replaced says that the form was sent after another reset link had
	// been opened in the browser, so it was refused (invalid page, 409).
	Replaced bool
	// Ambiguous says that the browser sent several token cookies, one of
	// them set by another host, so the page used none (invalid page, 400).
	Ambiguous bool
	// ForgotURL is Options.ForgotURL: when set, pages link there to ask
	// for a new link instead of showing a form.
	ForgotURL string
	// ForgotAction is where the built-in "new link" form posts, relative
	// to the page; its field is "email".
	ForgotAction string
	// SignInURL is Options.SignInURL (done page).
	SignInURL string

	// Status, Message and ID describe an error (error page): the HTTP
	// status, a sentence for the person, and the correlation ID.
	Status  int
	Message string
	ID      string

	texts          *i18n.Catalog
	errKey, msgKey string // the texts of Error and Message
}

// T returns the text of key in the page's language, rendered with the
// page's data (see [PageMessages]).
func (d PageData) T(key string) (string, error) {
	if d.texts == nil {
		return "", errors.New("httpadapter: T outside a page")
	}
	return d.texts.Text(d.Lang, key, d)
}

// Title returns the page title for the heading text key: the "title"
// text with the heading as {{.Text}} and the product name.
func (d PageData) Title(key string) (string, error) {
	text, err := d.T(key)
	if err != nil {
		return "", err
	}
	return d.texts.Text(d.Lang, "title", struct{ Text, Product string }{text, d.Product})
}

// Form field names of the hosted pages.
const (
	fieldToken   = "token"
	fieldBinding = "binding"
	fieldNew     = "newPassword"
	fieldConfirm = "confirmPassword"
	fieldEmail   = "email"
	fieldCode    = "secondFactorCode"
	fieldEnd     = "endSessions"
	fieldChoice  = "sessions"
)

// pageFunc serves one hosted page after the shared checks.
type pageFunc func(w http.ResponseWriter, r *http.Request)

// page runs the checks every hosted page shares: method (405),
// cross-origin POST (403), rate limit (429).
func (h *Handler) page(w http.ResponseWriter, r *http.Request, f pageFunc) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		h.pageError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
			message: "This page cannot be used that way.", allow: "GET, HEAD, POST"})
		return
	}
	if r.Method == http.MethodPost {
		if err := h.cop.Check(r); err != nil {
			h.pageError(w, r, &apiError{status: http.StatusForbidden, code: CodeForbidden,
				message: "This form was sent from another site, so it was refused. Open the link from your email again.",
				cause:   err})
			return
		}
	}
	if e := h.limit(r, false); e != nil {
		e.message = "Too many attempts from your network. Wait a minute and try again."
		h.pageError(w, r, e)
		return
	}
	f(w, r)
}

// resetPage is the page a reset link opens. GET shows the form and never
// consumes the token; POST sets the password.
func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		if q := r.URL.Query(); q.Has(fieldToken) {
			h.stashToken(w, r, q.Get(fieldToken))
			return
		}
		token, many := readTokenCookie(r)
		if many {
			h.ambiguous(w, r)
			return
		}
		info, err := h.svc.Inspect(r.Context(), token)
		if err != nil {
			h.tokenPage(w, r, err)
			return
		}
		h.render(w, r, http.StatusOK, PageForm, PageData{Token: token, Email: info.Email, ExpiresAt: info.ExpiresAt, SecondFactor: info.SecondFactor, Invitation: invitation(info)})
		return
	}
	form, e := readForm(w, r)
	if e != nil {
		h.pageError(w, r, e)
		return
	}
	token, pw := form.Get(fieldToken), form.Get(fieldNew)
	if token == "" { // the built-in form: the cookie, if the form is its own
		var many bool
		token, many = readTokenCookie(r)
		switch {
		case many:
			h.ambiguous(w, r)
			return
		case !form.Has(fieldBinding):
			h.pageError(w, r, &apiError{status: http.StatusBadRequest, code: CodeInvalidData,
				message: "The form could not be read. Open the link from your email again."})
			return
		case token != "" && !boundTo(form.Get(fieldBinding), token):
			h.render(w, r, http.StatusConflict, PageInvalid, PageData{Replaced: true})
			return
		}
	}
	info, err := h.svc.Inspect(r.Context(), token)
	if err != nil {
		h.tokenPage(w, r, err)
		return
	}
	// A form that offers the choice says so; an unchecked box is then
	// absent. Without the offer, sessions end as the Service says.
	keep := form.Has(fieldChoice) && form.Get(fieldEnd) == ""
	again := func(key, reason string) {
		h.render(w, r, http.StatusBadRequest, PageForm,
			PageData{Token: token, Email: info.Email, ExpiresAt: info.ExpiresAt, errKey: key, Reason: reason,
				SecondFactor: info.SecondFactor, KeepSessions: keep, CodeError: strings.HasPrefix(key, "form.code"), Invitation: invitation(info)})
	}
	refused := func(pe *password.Error) {
		key, ok := refusedTexts[pe.Code]
		if !ok {
			key = "form.refused"
		}
		h.render(w, r, http.StatusBadRequest, PageForm,
			PageData{Token: token, Email: info.Email, ExpiresAt: info.ExpiresAt, errKey: key, Reason: pe.Reason, Limit: pe.Limit,
				SecondFactor: info.SecondFactor, KeepSessions: keep, Invitation: invitation(info)})
	}
	switch minLen := h.minLength; {
	case pw == "":
		again("form.empty", "")
		return
	case pw != form.Get(fieldConfirm):
		again("form.mismatch", "")
		return
	case utf8.RuneCountInString(pw) < minLen:
		again("form.short", "")
		return
	}
	_, err = h.svc.Complete(r.Context(), reset.Completion{Token: token, Password: pw,
		SecondFactorCode: form.Get(fieldCode), KeepSessions: keep})
	if pe, ok := errors.AsType[*password.Error](err); ok { // by the policy, or by Users.SetPassword
		refused(pe)
		return
	}
	switch {
	case errors.Is(err, reset.ErrSecondFactorRequired):
		again("form.codeMissing", "")
		return
	case errors.Is(err, reset.ErrSecondFactorInvalid):
		again("form.codeWrong", "")
		return
	}
	if err != nil {
		h.tokenPage(w, r, err)
		return
	}
	clearTokenCookie(w, r)
	h.render(w, r, http.StatusOK, PageDone, PageData{Invitation: invitation(info)})
}

// invitation reports whether a link is an invitation.
func invitation(info reset.TokenInfo) bool { return info.Purpose == reset.PurposeInvite }

// refusedTexts are the form's texts for a password the policy refused,
// by [password.Error] code; another code gets "form.refused", which
// shows the policy's own reason.
var refusedTexts = map[string]string{
	password.TooShort:    "form.short",
	password.TooLong:     "form.long",
	password.Common:      "form.common",
	password.Context:     "form.context",
	password.Breached:    "form.breached",
	password.InvalidText: "form.invalidText",
}

// tokenPage answers for a token that does not work, or a failure.
func (h *Handler) tokenPage(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, reset.ErrExpiredToken):
		clearTokenCookie(w, r)
		h.render(w, r, http.StatusBadRequest, PageInvalid, PageData{Expired: true})
	case errors.Is(err, reset.ErrInvalidToken):
		clearTokenCookie(w, r)
		h.render(w, r, http.StatusBadRequest, PageInvalid, PageData{})
	default:
		e := fromCore(err)
		if e.status < 500 { // a policy error is handled by the caller; be safe
			e = unavailable(err)
		}
		h.pageError(w, r, e)
	}
}

// ambiguous answers a browser that sent several token cookies: it
// deletes what it can of them and asks the person to open the link again.
func (h *Handler) ambiguous(w http.ResponseWriter, r *http.Request) {
	clearTossedCookies(w, r)
	h.render(w, r, http.StatusBadRequest, PageInvalid, PageData{Ambiguous: true})
}

// forgotPage asks for an address and starts a public request for it.
func (h *Handler) forgotPage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.render(w, r, http.StatusOK, PageForgot, PageData{})
		return
	}
	form, e := readForm(w, r)
	if e != nil {
		h.pageError(w, r, e)
		return
	}
	err := h.svc.Request(r.Context(), form.Get(fieldEmail), "")
	if _, ok := errors.AsType[*reset.InputError](err); ok {
		h.render(w, r, http.StatusBadRequest, PageForgot, PageData{errKey: "forgot.bad"})
		return
	}
	if err != nil {
		h.pageError(w, r, fromCore(err))
		return
	}
	h.render(w, r, http.StatusOK, PageSent, PageData{})
}

// readForm reads a URL-encoded form body (415, 413 or 400 otherwise).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *apiError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &apiError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			message: "This form must be sent by a browser, as application/x-www-form-urlencoded."}
	}
	body, e := readBody(w, r)
	if e != nil {
		e.message = "The form is too large."
		return nil, e
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &apiError{status: http.StatusBadRequest, code: CodeInvalidData,
			message: "The form could not be read. Open the link from your email again."}
	}
	return v, nil
}

// pageError renders the error page for e and logs it.
func (h *Handler) pageError(w http.ResponseWriter, r *http.Request, e *apiError) {
	id := h.errorHeaders(w, r, e)
	key, ok := pageErrorTexts[e.status]
	if !ok {
		key = "error.ourSide"
	}
	h.render(w, r, e.status, PageError, PageData{Status: e.status, ID: id, msgKey: key})
}

// pageErrorTexts are the texts of the error page by status.
var pageErrorTexts = map[int]string{
	http.StatusBadRequest:            "error.badForm",
	http.StatusForbidden:             "error.crossSite",
	http.StatusMethodNotAllowed:      "error.method",
	http.StatusRequestEntityTooLarge: "error.tooLarge",
	http.StatusUnsupportedMediaType:  "error.mediaType",
	http.StatusTooManyRequests:       "error.tooMany",
}

// render executes a page template in the request's language and sends it
// with the page headers.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, d PageData) {
	var nb [18]byte
	_, _ = rand.Read(nb[:])
	ps := h.pageSet()
	d.Nonce = base64.RawURLEncoding.EncodeToString(nb[:])
	d.Product = h.cfg.Product
	d.MinLength = h.minLength
	d.Action = path.Base(PagePath)
	d.ForgotAction = path.Base(ForgotPath)
	d.ForgotURL = h.opts.ForgotURL
	d.SignInURL = h.opts.SignInURL
	d.EndsSessions = h.cfg.EndSessions != nil
	if d.Token != "" {
		d.Binding = formBinding(d.Token)
	}
	d.texts, d.Lang = ps.texts, ps.lang(r)
	d.Dir = ps.texts.Dir(d.Lang)
	t := defaultPages.Lookup(name)
	if h.opts.Pages != nil {
		if ct := h.opts.Pages.Lookup(name); ct != nil {
			t = ct
		}
	}
	var err error
	if d.errKey != "" {
		d.Error, err = d.T(d.errKey)
	}
	if d.msgKey != "" && err == nil {
		d.Message, err = d.T(d.msgKey)
	}
	var buf bytes.Buffer
	if err == nil {
		err = t.Execute(&buf, d)
	}
	if err != nil {
		h.cfg.Logger.ErrorContext(r.Context(), "rendering page", "component", "passreset/httpadapter", "page", name, "err", err)
		buf.Reset()
		status = http.StatusInternalServerError
		buf.WriteString("<!doctype html><title>Error</title><p>Something went wrong on our side.</p>\n")
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Language", d.Lang)
	hd.Add("Vary", "Accept-Language")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	if secure(r) { // browsers ignore it, with a console error, on plain http
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	}
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+d.Nonce+
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pages is what the hosted pages of one Handler share, made on first use.
type pages struct {
	once    sync.Once
	texts   *i18n.Catalog
	langs   []string // texts.Languages(), English first
	matcher language.Matcher
}

// pageSet returns the handler's page texts, built on first use: the
// shipped [PageMessages] under the Service's [reset.Templates.Messages]
// (which reset.New has already parsed, so that this cannot fail on them).
func (h *Handler) pageSet() *pages {
	p := &h.pages
	p.once.Do(func() {
		texts, err := i18n.NewCatalog(pageMessages, h.cfg.Templates.Messages)
		if err != nil { // only the shipped texts are left to fail, and a test parses them
			h.cfg.Logger.Error("hosted page texts", "component", "passreset/httpadapter", "err", err)
			texts, _ = i18n.NewCatalog(pageMessages, nil)
		}
		p.texts = texts
		p.langs = append([]string{"en"}, slices.DeleteFunc(texts.Languages(), func(l string) bool { return l == "en" })...)
		tags := make([]language.Tag, 0, len(p.langs))
		for _, l := range p.langs {
			tags = append(tags, language.Make(l))
		}
		p.matcher = language.NewMatcher(tags)
	})
	return p
}

// lang returns the page language for r's Accept-Language: the best of
// the handler's languages by golang.org/x/text/language, or English.
func (p *pages) lang(r *http.Request) string {
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return "en"
	}
	_, i, conf := p.matcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	return p.langs[i]
}
