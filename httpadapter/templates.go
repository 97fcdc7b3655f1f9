package httpadapter

import "html/template"

// defaultPages are the built-in hosted pages. They use no script, one
// <style> element carrying the CSP nonce, and plain forms that work
// without JavaScript.
var defaultPages = template.Must(template.New("pages").Parse(`
{{define "top"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<meta name="robots" content="noindex, nofollow">
<style nonce="{{.Nonce}}">
body{margin:0;background:#f4f5f7;color:#1b1f24;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{box-sizing:border-box;max-width:28rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #d0d5db;border-radius:8px}
h1{font-size:1.4rem;line-height:1.3;margin:0 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 0}
label{display:block;margin-top:1rem;font-weight:600}
input{box-sizing:border-box;width:100%;margin-top:.25rem;padding:.6rem;font:inherit;border:1px solid #6b7580;border-radius:4px}
input:focus,button:focus,a:focus{outline:3px solid #2a7de1;outline-offset:2px}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font:inherit;font-weight:600;color:#fff;background:#0b57a4;border:0;border-radius:4px;cursor:pointer}
.hint{margin:.25rem 0 0;color:#48515b;font-size:.9rem}
.error{padding:.6rem .8rem;color:#8a1010;background:#fdeeee;border:1px solid #e3a3a3;border-radius:4px}
.small{color:#48515b;font-size:.9rem}
a{color:#0b57a4}
</style>
{{end}}

{{define "bottom"}}</main>
</body>
</html>
{{end}}

{{define "newlink"}}{{if .ForgotURL}}<p><a href="{{.ForgotURL}}">Request a new link</a></p>
{{else}}<form method="post" action="{{.ForgotAction}}">
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" inputmode="email" required>
<button type="submit">Send me a new link</button>
</form>
{{end}}{{end}}

{{define "form"}}{{template "top" .}}<title>Choose a new password{{with .Product}} – {{.}}{{end}}</title>
</head>
<body>
<main>
<h1>Choose a new password</h1>
<p>For the {{with .Product}}{{.}} {{end}}account <strong>{{.Email}}</strong>.</p>
{{with .Error}}<p class="error" id="form-error" role="alert">{{.}}</p>
{{end}}<form method="post" action="{{.Action}}">
<input type="email" name="username" autocomplete="username" value="{{.Email}}" readonly hidden>
<label for="newPassword">New password</label>
<input id="newPassword" name="newPassword" type="password" autocomplete="new-password" required minlength="{{.MinLength}}" aria-describedby="newPassword-hint{{if .Error}} form-error{{end}}"{{if .Error}} aria-invalid="true"{{end}}>
<p class="hint" id="newPassword-hint">At least {{.MinLength}} characters. A few unrelated words make a strong password that is easy to remember.</p>
<label for="confirmPassword">New password again</label>
<input id="confirmPassword" name="confirmPassword" type="password" autocomplete="new-password" required minlength="{{.MinLength}}">
<button type="submit">Set the new password</button>
</form>
<p class="small">This link works once. Did not ask for it? Close this page: your password stays as it is.</p>
{{template "bottom" .}}{{end}}

{{define "invalid"}}{{template "top" .}}<title>{{if .Expired}}This link has expired{{else}}This link does not work{{end}}{{with .Product}} – {{.}}{{end}}</title>
</head>
<body>
<main>
{{if .Expired}}<h1>This link has expired</h1>
<p>For your safety, a link to reset a password works for a limited time only.</p>
{{else}}<h1>This link does not work</h1>
<p>It may be incomplete, it may have been used already, or a newer link may have replaced it: only the most recent link works, and only once.</p>
{{end}}<h2>Get a new link</h2>
{{template "newlink" .}}{{template "bottom" .}}{{end}}

{{define "done"}}{{template "top" .}}<title>Password changed{{with .Product}} – {{.}}{{end}}</title>
</head>
<body>
<main>
<h1>Your password has been changed</h1>
<p>You can now sign in with your new password. You have not been signed in by this page.</p>
{{with .SignInURL}}<p><a href="{{.}}">Sign in</a></p>
{{end}}{{template "bottom" .}}{{end}}

{{define "forgot"}}{{template "top" .}}<title>Reset your password{{with .Product}} – {{.}}{{end}}</title>
</head>
<body>
<main>
<h1>Reset your password</h1>
<p>Type the email address of your account and we will send you a link to choose a new password.</p>
{{with .Error}}<p class="error" role="alert">{{.}}</p>
{{end}}{{template "newlink" .}}{{template "bottom" .}}{{end}}

{{define "sent"}}{{template "top" .}}<title>Check your email{{with .Product}} – {{.}}{{end}}</title>
</head>
<body>
<main>
<h1>Check your email</h1>
<p>If an account uses this email address, a link to reset its password is on its way. It can take a few minutes; check your spam folder too.</p>
{{template "bottom" .}}{{end}}

{{define "error"}}{{template "top" .}}<title>Something went wrong{{with .Product}} – {{.}}{{end}}</title>
</head>
<body>
<main>
<h1>Something went wrong</h1>
<p role="alert">{{.Message}}</p>
<p class="small">Error {{.Status}}. Reference: {{.ID}}</p>
{{template "bottom" .}}{{end}}
`))
