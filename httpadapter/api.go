package httpadapter

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/passreset/passreset/reset"
)

// apiFunc serves one JSON operation for a caller that is trusted or not.
type apiFunc func(w http.ResponseWriter, r *http.Request, trusted bool) *apiError

// api runs the checks every JSON operation shares, in order: method (405),
// caller (401, or 503 if the authorizer fails), rate limit (429, public
// callers and refused credentials), then the operation.
func (h *Handler) api(w http.ResponseWriter, r *http.Request, f apiFunc) {
	if r.Method != http.MethodPost {
		h.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
			message: "This operation takes POST.", allow: http.MethodPost})
		return
	}
	trusted, authErr := false, error(nil)
	if h.opts.Authorize != nil {
		trusted, authErr = h.opts.Authorize(r)
		if authErr != nil {
			trusted = false
		}
	}
	if e := h.limit(r, trusted); e != nil {
		h.writeError(w, r, e)
		return
	}
	if authErr != nil {
		if errors.Is(authErr, ErrUnauthorized) {
			h.writeError(w, r, &apiError{status: http.StatusUnauthorized, code: CodeAccessFailed,
				message: "The credentials are not valid.", cause: authErr})
		} else {
			h.writeError(w, r, unavailable(authErr))
		}
		return
	}
	if e := f(w, r, trusted); e != nil {
		h.writeError(w, r, e)
	}
}

// passwordLost is PingOne's password-lost. A trusted caller gets the link
// (200) or 404, and may choose the link's purpose and lifetime; the public
// always gets the same 202, or 403 for a field only a trusted caller may
// send, before anything is looked up.
func (h *Handler) passwordLost(w http.ResponseWriter, r *http.Request, trusted bool) *apiError {
	v, e := readJSON(w, r, lostFields)
	if e != nil {
		return e
	}
	skip := v["skipSend"] == "enabled"
	if !trusted {
		if skip {
			return forbidden("skipSend", `Only a trusted caller may set skipSend to "enabled".`, `skipSend "enabled" needs client credentials.`)
		}
		for _, f := range []string{"purpose", "lifetime"} {
			if _, ok := v[f]; ok {
				return forbidden(f, "Only a trusted caller may set "+f+".", f+" needs client credentials.")
			}
		}
		if err := h.svc.Request(r.Context(), v["email"], v["link"]); err != nil {
			return fromCore(err)
		}
		h.writeJSON(w, http.StatusAccepted, struct {
			Message string `json:"message"`
		}{PublicMessage})
		return nil
	}
	req := reset.TrustedRequest{Email: v["email"], Link: v["link"], SkipSend: skip, Purpose: reset.Purpose(v["purpose"])}
	if s, ok := v["lifetime"]; ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return invalid(DetailInvalidValue, "lifetime", fmt.Sprintf("lifetime must be a positive Go duration such as \"168h\" or \"30m\", not %q.", s))
		}
		req.Lifetime = d
	}
	iss, err := h.svc.RequestTrusted(r.Context(), req)
	if err != nil {
		return fromCore(err)
	}
	h.writeJSON(w, http.StatusOK, struct {
		Link string `json:"link"`
	}{iss.Link})
	return nil
}

// passwordReset completes a reset with a confirmation token.
func (h *Handler) passwordReset(w http.ResponseWriter, r *http.Request, _ bool) *apiError {
	v, e := readJSON(w, r, resetFields)
	if e != nil {
		return e
	}
	_, err := h.svc.Complete(r.Context(), reset.Completion{
		Token: v["confirmationToken"], Password: v["newPassword"], UserID: v["id"],
		SecondFactorCode: v["secondFactorCode"], KeepSessions: v["endSessions"] == "disabled",
	})
	if err != nil {
		return fromCore(err)
	}
	h.writeJSON(w, http.StatusOK, struct {
		Message string `json:"message"`
	}{"The password has been changed."})
	return nil
}

// CheckResult is the answer of the check operation for a working token.
type CheckResult struct {
	Valid     bool      `json:"valid"`     // always true; a token that does not work gets an error
	ExpiresAt time.Time `json:"expiresAt"` // when the token stops working
	// SecondFactorRequired says that the reset needs the account's
	// second-factor code in secondFactorCode.
	SecondFactorRequired bool `json:"secondFactorRequired"`
	// EndsSessions says that the reset ends the account's other sessions
	// unless endSessions is "disabled".
	EndsSessions bool `json:"endsSessions"`
	// Purpose is what the link was issued for: "reset" or "invite"
	// ([reset.TokenInfo.Purpose]).
	Purpose reset.Purpose `json:"purpose"`
}

// check tells whether a token works, without consuming it.
func (h *Handler) check(w http.ResponseWriter, r *http.Request, _ bool) *apiError {
	v, e := readJSON(w, r, checkFields)
	if e != nil {
		return e
	}
	info, err := h.svc.Inspect(r.Context(), v["confirmationToken"])
	if err != nil {
		return fromCore(err)
	}
	h.writeJSON(w, http.StatusOK, CheckResult{Valid: true, ExpiresAt: info.ExpiresAt.UTC(),
		SecondFactorRequired: info.SecondFactor, EndsSessions: h.cfg.EndSessions != nil, Purpose: info.Purpose})
	return nil
}

// forbidden is the 403 for a field only a trusted caller may send.
func forbidden(field, message, detail string) *apiError {
	return &apiError{status: http.StatusForbidden, code: CodeForbidden, message: message,
		details: []ErrorDetail{{Code: DetailNotAllowed, Target: field, Message: detail}}}
}
