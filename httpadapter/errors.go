package httpadapter

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
)

// Top-level error codes, the "code" of an [ErrorResponse]. They follow
// PingOne's platform style: a constant a client switches on, with the
// HTTP status as a coarse class.
const (
	CodeInvalidData          = "INVALID_DATA"            // 400: the body or a field is wrong; see details
	CodeInvalidToken         = "INVALID_TOKEN"           // 400: the confirmation token is unknown, used or replaced
	CodeExpiredToken         = "EXPIRED_TOKEN"           // 400: the confirmation token has expired
	CodeSecondFactorRequired = "SECOND_FACTOR_REQUIRED"  // 400: the account has a second factor: send secondFactorCode
	CodeSecondFactorInvalid  = "SECOND_FACTOR_INVALID"   // 400: secondFactorCode is wrong; after a few wrong codes the token stops working
	CodeAccessFailed         = "ACCESS_FAILED"           // 401: credentials were sent but are wrong
	CodeForbidden            = "FORBIDDEN"               // 403: the caller may not do this
	CodeNotFound             = "NOT_FOUND"               // 404: no such account (trusted callers) or no such path
	CodeMethodNotAllowed     = "METHOD_NOT_ALLOWED"      // 405: see the Allow header
	CodeRequestTooLarge      = "REQUEST_TOO_LARGE"       // 413: the body is over MaxBodyBytes
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"  // 415: the body is not JSON (or not a form, for the pages)
	CodeRequestLimited       = "REQUEST_LIMITED"         // 429: too many requests; see Retry-After
	CodeServiceUnavailable   = "SERVICE_UNAVAILABLE"     // 503: a back end failed, or the mail queue is full
	CodeUnexpected           = "UNEXPECTED_SERVER_ERROR" // 500: a bug; the details are in the log
)

// Detail codes, the "code" of an [ErrorDetail].
const (
	DetailInvalidJSON   = "INVALID_JSON"        // the body is not one well-formed JSON object; target "body"
	DetailUnknownField  = "UNKNOWN_FIELD"       // the body has a field this operation does not take
	DetailRequiredValue = "REQUIRED_VALUE"      // a required field is missing, null or empty
	DetailInvalidValue  = "INVALID_VALUE"       // a field has the wrong type or a value that is not allowed
	DetailSizeExceeded  = "SIZE_LIMIT_EXCEEDED" // the body is too large; target "body"
	DetailNotAllowed    = "NOT_ALLOWED"         // the value is valid but this caller may not use it
)

// ErrorResponse is the JSON body of every error the API returns, in
// PingOne's platform style.
type ErrorResponse struct {
	// ID is a correlation ID, also sent as the Correlation-Id header and
	// written to the log with the cause of the error.
	ID string `json:"id"`
	// Code is one of the Code constants.
	Code string `json:"code"`
	// Message describes the error in English, for developers.
	Message string `json:"message"`
	// Details, when present, name the offending fields.
	Details []ErrorDetail `json:"details,omitempty"`
}

// ErrorDetail is one problem with a request.
type ErrorDetail struct {
	// Code is one of the Detail constants.
	Code string `json:"code"`
	// Target names the offending field with its JSON name ("email",
	// "skipSend", "newPassword", ...), or "body" for the body as a whole.
	Target string `json:"target,omitempty"`
	// Message describes the problem in English.
	Message string `json:"message"`
}

// apiError is an error on its way to becoming a response.
type apiError struct {
	status     int
	code       string
	message    string
	details    []ErrorDetail
	retryAfter time.Duration // sets Retry-After when positive
	allow      string        // sets Allow for 405
	cause      error         // logged, never sent
	// password is the refusal of a new password, whose detail message
	// writeError gives in the request's language.
	password *password.Error
}

func (e *apiError) Error() string {
	if len(e.details) > 0 {
		return fmt.Sprintf("%d %s: %s: %s", e.status, e.code, e.details[0].Target, e.details[0].Message)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message)
}

// target returns the first detail's target, for tests and logs.
func (e *apiError) target() string {
	if len(e.details) == 0 {
		return ""
	}
	return e.details[0].Target
}

// invalid returns a 400 INVALID_DATA error about one field.
func invalid(detail, target, msg string) *apiError {
	return &apiError{
		status:  http.StatusBadRequest,
		code:    CodeInvalidData,
		message: "The request could not be completed. One or more validation errors were in the request.",
		details: []ErrorDetail{{Code: detail, Target: target, Message: msg}},
	}
}

// tokenError returns the 400 answer for a confirmation token that does not work.
func tokenError(expired bool) *apiError {
	if expired {
		return &apiError{status: http.StatusBadRequest, code: CodeExpiredToken,
			message: "The confirmation token has expired. Request a new link.",
			details: []ErrorDetail{{Code: DetailInvalidValue, Target: "confirmationToken", Message: "The confirmation token has expired."}}}
	}
	return &apiError{status: http.StatusBadRequest, code: CodeInvalidToken,
		message: "The confirmation token is invalid, was already used, or was replaced by a newer one. Request a new link.",
		details: []ErrorDetail{{Code: DetailInvalidValue, Target: "confirmationToken", Message: "The confirmation token is not valid."}}}
}

// unavailable returns a 503 that says nothing about cause.
func unavailable(cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: CodeServiceUnavailable,
		message: "The service is unavailable. Try again later.", cause: cause}
}

// QueueRetryAfter is the Retry-After sent with a 503 when the core's
// delivery queue is full ([reset.ErrQueueFull]).
const QueueRetryAfter = 10 * time.Second

// fromCore translates an error of package reset into a response.
// Anything it does not recognise is a back end failure: 503, logged.
func fromCore(err error) *apiError {
	var inErr *reset.InputError
	var pwErr *password.Error
	switch {
	case errors.Is(err, reset.ErrSecondFactorRequired):
		return &apiError{status: http.StatusBadRequest, code: CodeSecondFactorRequired,
			message: "The account has a second factor: send its code in secondFactorCode.",
			details: []ErrorDetail{{Code: DetailRequiredValue, Target: "secondFactorCode", Message: "secondFactorCode is required for this account."}}}
	case errors.Is(err, reset.ErrSecondFactorInvalid):
		return &apiError{status: http.StatusBadRequest, code: CodeSecondFactorInvalid,
			message: "The second-factor code is not valid. After a few wrong codes the confirmation token stops working.",
			details: []ErrorDetail{{Code: DetailInvalidValue, Target: "secondFactorCode", Message: "The second-factor code is not valid."}}}
	case errors.As(err, &inErr):
		if errors.Is(err, reset.ErrInvalidToken) {
			return tokenError(false)
		}
		if inErr.Missing {
			return invalid(DetailRequiredValue, inErr.Field, inErr.Field+" is required.")
		}
		return invalid(DetailInvalidValue, inErr.Field, "Invalid "+inErr.Field+": "+inErr.Reason+".")
	case errors.As(err, &pwErr):
		e := invalid(DetailInvalidValue, "newPassword", "The new password "+pwErr.Reason+".")
		e.password = pwErr
		return e
	case errors.Is(err, password.ErrRejected):
		return invalid(DetailInvalidValue, "newPassword", "The new password does not meet the password policy.")
	case errors.Is(err, reset.ErrExpiredToken):
		return tokenError(true)
	case errors.Is(err, reset.ErrInvalidToken):
		return tokenError(false)
	case errors.Is(err, reset.ErrUnknownUser):
		return &apiError{status: http.StatusNotFound, code: CodeNotFound,
			message: "No account has this email address.",
			details: []ErrorDetail{{Code: DetailInvalidValue, Target: "email", Message: "No account has this email address."}}}
	case errors.Is(err, reset.ErrSuppressed):
		return invalid(DetailInvalidValue, "email", "Reset emails to this address are suppressed: it bounced or its owner reported one as spam.")
	case errors.Is(err, reset.ErrQueueFull):
		e := unavailable(err)
		e.retryAfter = QueueRetryAfter
		return e
	default:
		return unavailable(err)
	}
}

// newID returns a random correlation ID: 26 characters of base32 from
// crypto/rand.
func newID() string { return rand.Text() }

// retryAfterValue renders d as whole seconds, rounded up, at least 1.
func retryAfterValue(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// errorHeaders logs e under a new correlation ID, sets the headers every
// error answer carries (Correlation-Id, and Retry-After and Allow when e
// has them) and returns the ID.
func (h *Handler) errorHeaders(w http.ResponseWriter, r *http.Request, e *apiError) string {
	id := newID()
	h.logError(r, id, e)
	hd := w.Header()
	hd.Set("Correlation-Id", id)
	if e.retryAfter > 0 {
		hd.Set("Retry-After", retryAfterValue(e.retryAfter))
	}
	if e.allow != "" {
		hd.Set("Allow", e.allow)
	}
	return id
}

// writeError sends e as JSON and logs it.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	id := h.errorHeaders(w, r, e)
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", h.opts.AuthChallenge)
	}
	if e.password != nil {
		h.localizePassword(w, r, e)
	}
	h.writeJSON(w, e.status, ErrorResponse{ID: id, Code: e.code, Message: e.message, Details: e.details})
}

// localizePassword gives the detail message of a refused new password
// in the language the request's Accept-Language asks for, with the
// hosted form's text for the refusal's code: the API's reason reads the
// same as the page's, in all the page's languages.
func (h *Handler) localizePassword(w http.ResponseWriter, r *http.Request, e *apiError) {
	key, ok := refusedTexts[e.password.Code]
	if !ok {
		key = "form.refused"
	}
	p := h.pageSet()
	d := PageData{Lang: p.lang(r), MinLength: e.password.Limit, Limit: e.password.Limit, Reason: e.password.Reason, texts: p.texts}
	msg, err := d.T(key)
	if err != nil || len(e.details) == 0 {
		return // the English detail stays
	}
	e.details[0].Message = msg
	w.Header().Set("Content-Language", d.Lang)
	w.Header().Add("Vary", "Accept-Language")
}

func (h *Handler) logError(r *http.Request, id string, e *apiError) {
	ctx := r.Context()
	attrs := []any{"error_id", id, "method", r.Method, "path", r.URL.Path, "status", e.status, "code", e.code}
	if t := e.target(); t != "" {
		attrs = append(attrs, "target", t)
	}
	switch {
	case e.status >= 500:
		if e.cause != nil {
			attrs = append(attrs, "err", e.cause)
		}
		h.log.ErrorContext(ctx, "request failed", attrs...)
	default:
		h.log.DebugContext(ctx, "request refused", attrs...)
	}
}

// writeJSON sends v with the API's headers.
func (h *Handler) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil { // cannot happen with the types used here
		h.log.Error("encoding response", "err", err)
		http.Error(w, `{"code":"`+CodeUnexpected+`"}`, http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal encodes v without HTML escaping (links keep their "&"), with a
// final newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
