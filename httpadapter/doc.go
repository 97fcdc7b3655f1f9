// Package httpadapter serves a [reset.Service] over HTTP: PingOne's
// "Resetting a Password by Email" JSON operations and a hosted reset page,
// as one plain [http.Handler] that an application mounts with one line:
//
//	auth, err := httpadapter.BasicAuth(id, secret) // an error if either is empty
//	...
//	h, err := httpadapter.New(svc, httpadapter.Options{Authorize: auth})
//	...
//	mux.Handle("/auth/", http.StripPrefix("/auth", h))
//
// Its paths are relative to the mount point: a router that keeps the
// prefix (chi's Mount, or a mux pattern without [http.StripPrefix]) gets
// a 404 whose message names the prefix to strip.
//
// [reset.Config.ResetURL] must then be the absolute URL of the hosted page:
// "https://app.example.com/auth" + [PagePath]. The first request the
// handler serves shows where it is mounted; when ResetURL ends with
// PagePath but under another prefix, a warning naming both paths is
// logged, since every emailed link would miss the page.
//
// # Paths
//
// Paths are relative to the mount point:
//
//	POST /users/password-lost          {"email", "link"?, "skipSend"?,
//	                                    "purpose"?, "lifetime"?}   start a reset or an invitation
//	POST /users/password-reset         {"confirmationToken", "newPassword", "id"?,
//	                                    "secondFactorCode"?, "endSessions"?}   finish it
//	POST /users/password-reset/check   {"confirmationToken"}   does the token work? (never consumes)
//	GET  /reset?token=...              the hosted page: a form (never consumes the token)
//	POST /reset                        the form's submission: sets the password
//	GET  /forgot, POST /forgot         a small public "forgot password" form
//
// The check operation is a POST so that the token stays out of access
// logs; it answers 200 {"valid": true, "expiresAt": "...",
// "secondFactorRequired": bool, "endsSessions": bool, "purpose": "reset"
// or "invite"} or the 400 errors INVALID_TOKEN and EXPIRED_TOKEN.
//
// For an account with a second factor ([reset.SecondFactor]),
// password-reset needs "secondFactorCode": without it the answer is 400
// SECOND_FACTOR_REQUIRED, with a wrong one 400 SECOND_FACTOR_INVALID (both
// naming secondFactorCode, nothing changed); the fifth wrong code uses the
// token up (INVALID_TOKEN). "endSessions": "disabled" keeps the account's
// other sessions; by default a Service with [reset.Config.EndSessions]
// ends them. The hosted form asks for the code
// (autocomplete="one-time-code") and offers "sign out of all devices",
// ticked, in the same way.
//
// # Trusted and public callers
//
// [Options.Authorize] (for example [BasicAuth]) tells the application's
// own back end from the public. For password-lost:
//
//   - a trusted caller gets PingOne's behaviour: 200 {"link": "..."} for a
//     known address (the email is sent unless skipSend is "enabled"), 404
//     for an unknown one. It may also send "purpose": "reset" (the
//     default) or "invite" ([reset.PurposeInvite]: the invitation email,
//     and the hosted page's invitation texts), and "lifetime", a Go
//     duration string such as "168h" or "30m" ([time.ParseDuration]), at
//     most [reset.Config.MaxInviteLifetime] for an invitation and
//     [reset.Config.TokenTTL] for a reset; default the maximum. A longer,
//     unparsable or non-positive lifetime, or another purpose, is a 400
//     naming the field, and changes nothing;
//   - a public caller (no credentials) always gets the same answer, byte
//     for byte, whether the address has an account, has none, or is in its
//     cooldown: 202 {"message": [PublicMessage]}. The work happens in the
//     background, so the timing does not tell either. skipSend "enabled",
//     and any "purpose" or "lifetime", get 403 before the address is
//     looked at;
//   - credentials that are present but wrong get 401 with WWW-Authenticate,
//     never the public answer.
//
// A caller-supplied "link" must match [reset.Config.AllowedLinks] for
// both kinds of caller. Completing a reset needs no credentials: the
// token is the credential.
//
// # Rate limit
//
// Public callers are rate limited per client ([Options.RateLimit], by
// default 60 a minute over all paths); trusted callers are not, unless
// [Options.LimitTrusted] is set. The client is [Options.ClientKey], by
// default [ClientIP], the connection's peer. Behind reverse proxies every
// request comes from a proxy: use [TrustedProxies], which reads the
// Forwarded or X-Forwarded-For header, only from the proxies. With the
// default key, the handler logs one warning when a single peer forwards
// requests for many addresses. [Options.Limiter] replaces the built-in
// in-process limiter, for example with one shared by every instance.
//
// # Errors
//
// Errors are JSON in PingOne's platform style, an [ErrorResponse]:
//
//	{"id": "<correlation id>", "code": "INVALID_DATA", "message": "...",
//	 "details": [{"code": "INVALID_VALUE", "target": "skipSend", "message": "..."}]}
//
// The id is also sent as the Correlation-Id header and logged with the
// cause. Statuses and codes:
//
//	200                            link (trusted), password changed, token valid
//	202                            public password-lost (always the same)
//	400 INVALID_DATA               malformed JSON (target "body", with the byte offset),
//	                               wrong type, value outside an enum, missing or invalid
//	                               email, control characters (CR, LF, ...) in any field,
//	                               unknown or repeated field, data after the object,
//	                               link not allowed, new password refused by the policy
//	                               or by the application's SetPassword (target newPassword),
//	                               reset emails to the address suppressed (trusted callers
//	                               only: [reset.ErrSuppressed], target email)
//	400 INVALID_TOKEN              token malformed, unknown, used, replaced, or of another id
//	400 EXPIRED_TOKEN              token expired
//	400 SECOND_FACTOR_REQUIRED     the account has a second factor and no secondFactorCode came
//	400 SECOND_FACTOR_INVALID      secondFactorCode is wrong
//	401 ACCESS_FAILED              credentials present but wrong (WWW-Authenticate)
//	403 FORBIDDEN                  skipSend "enabled", purpose or lifetime from a public caller;
//	                               cross-origin POST to a hosted page
//	404 NOT_FOUND                  unknown email (trusted callers only); unknown path
//	405 METHOD_NOT_ALLOWED         with Allow
//	413 REQUEST_TOO_LARGE          body over [MaxBodyBytes] (64 KiB)
//	415 UNSUPPORTED_MEDIA_TYPE     not application/json (a form, for the pages)
//	429 REQUEST_LIMITED            public client over its rate, with Retry-After
//	503 SERVICE_UNAVAILABLE        a back end failed (no detail; logged), or the mail
//	                               queue is full for a trusted caller ([reset.ErrQueueFull],
//	                               with Retry-After; a public caller gets its 202, and the
//	                               core drops and counts the request)
//
// No refused request creates, rotates or consumes a token: input is
// checked completely before the core is called, and the core checks the
// password policy before it consumes a token.
//
// # Setting the password
//
// Completing a reset (the JSON operation or the hosted form) calls the
// application's [reset.Users] SetPassword. When it refuses the password
// itself, it should return a [*password.Error] whose Reason completes
// "The new password ...": the core puts the token back, and the person
// gets 400 INVALID_DATA naming newPassword with that reason (the hosted
// form shows it), never a 503, and can try again with the same link. Any
// other error is a 503 and also leaves the token working.
//
// A password the policy refuses ([password.DefaultPolicy]: length,
// common and breached passwords, context words) is refused before the
// token is touched: 400 INVALID_DATA naming newPassword in the API, whose
// detail message is the hosted form's text for the refusal in the
// language of the request's Accept-Language (with Content-Language); on
// the hosted form, the text of its [password.Error] Code in the page's
// language ("form.short", "form.long", "form.common", "form.context",
// "form.breached", "form.invalidText"; "form.refused" with the policy's
// Reason for any other).
//
// [reset.Config.EndSessions] and [reset.Config.AfterReset] then run with a context that carries the
// request context's values (loggers, trace IDs) but not its
// cancellation, bounded by [reset.Config.AfterResetTimeout] (30 s by
// default): a client that goes away does not cut them short.
//
// # The hosted page
//
// The page at [PagePath] is plain HTML that works without JavaScript:
// labelled fields, autocomplete="new-password", in the language the
// browser asks for (Accept-Language; eight ship, see [PageMessages]).
// Opening an emailed link moves its token into an HttpOnly, SameSite=Lax
// cookie and redirects (303) to the same page without the token, so that
// the token is not left in the address bar, the history or the page.
// Over https the cookie is "__Host-passreset_token" (Secure, Path=/, no
// Domain), which a browser takes from this host only: no sibling
// subdomain can plant one for the parent domain. The request counts as
// https when its connection is TLS, when it carries "X-Forwarded-Proto:
// https" or "Forwarded: proto=https", or when the browser sent fetch
// metadata (Sec-Fetch-Site, sent to https and loopback origins only) to a
// host that is not loopback. These headers are believed from any peer
// because they can only make the cookie stricter (a client that lies
// loses its own link); behind a TLS-terminating proxy, let the proxy send
// one of the first two.
// Over plain http (development) the cookie is "passreset_token", scoped to
// the page's path, and no prefix protects it: when the browser sends more
// than one token cookie the page uses none, deletes what it can (its own,
// and those for its host or a parent domain on any path that reaches the
// page) and asks the person to open the link again. Each rendered form
// carries a binding to its link (an HMAC keyed with the token, in the
// hidden field "binding"): a form sent after another link was opened in
// the same browser is answered with 409 and a page that says its link was
// replaced, and changes nothing. The page is sent with
// Cache-Control: no-store, Referrer-Policy: same-origin (so that the
// page's own POST carries its real Origin, which
// [http.CrossOriginProtection] checks, while no other site ever receives
// the address in a Referer), X-Frame-Options: DENY and a
// Content-Security-Policy of
// default-src 'none' with a per-response style nonce, form-action 'self'
// and frame-ancestors 'none'. Cross-origin POSTs are refused with
// [http.CrossOriginProtection]. GET only inspects the token, so mail
// scanners that fetch every link do not use it up. Passwords that differ
// or that the policy refuses show the form again with the reason; a link
// that does not work shows a page that says why and offers a new one; a
// changed password shows a confirmation and does not sign the person in.
// An invitation's link ([reset.PurposeInvite], told by
// [reset.Service.Inspect] from the token itself, never from the query)
// shows the same form and confirmation with the invitation's texts,
// "Choose your password" ([PageData].Invitation).
// [Options.Pages] replaces any of the templates.
//
// A replacement form page must post, as application/x-www-form-urlencoded
// to [PageData].Action, the fields:
//
//	token            optional: the confirmation token ([PageData].Token); without it
//	                 the page reads the token from its cookie
//	binding          required without token: [PageData].Binding, which ties the form
//	                 to the cookie's link
//	newPassword      the new password
//	confirmPassword  the new password again; it must equal newPassword
//
// and a replacement "new link" form posts the field "email" to
// [PageData].ForgotAction. The product name on the pages is the Service's
// ([reset.Config.Product]); the minlength hint is the shortest password
// the Service's policy accepts.
package httpadapter
