package httpadapter

import (
	"html/template"

	"github.com/passreset/passreset/reset"
)

// defaultPages are the built-in hosted pages. They use no script, one
// <style> element carrying the CSP nonce, and plain forms that work
// without JavaScript. Their texts come from [PageMessages] in the page's
// language; the layout uses no left or right, so that it mirrors for
// right-to-left languages.
var defaultPages = template.Must(template.New("pages").Parse(`
{{define "top"}}<!doctype html>
<html lang="{{.Lang}}" dir="{{.Dir}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<meta name="robots" content="noindex, nofollow">
<style nonce="{{.Nonce}}">
body{margin:0;background:#f4f5f7;color:#1b1f24;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK JP","Noto Sans Arabic",sans-serif}
main{box-sizing:border-box;max-width:28rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #d0d5db;border-radius:8px}
@media (max-width:30rem){main{margin:0;border:0;border-radius:0;padding:1.25rem}}
h1{font-size:1.4rem;line-height:1.3;margin:0 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 0}
label{display:block;margin-top:1rem;font-weight:600}
input{box-sizing:border-box;width:100%;margin-top:.25rem;padding:.6rem;font:inherit;border:1px solid #6b7580;border-radius:4px}
input[aria-invalid=true]{border-color:#8a1010}
input:focus,button:focus,a:focus{outline:3px solid #2a7de1;outline-offset:2px}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font:inherit;font-weight:600;color:#fff;background:#0b57a4;border:0;border-radius:4px;cursor:pointer}
.hint{margin:.25rem 0 0;color:#48515b;font-size:.9rem}
.error{padding:.6rem .8rem;color:#8a1010;background:#fdeeee;border:1px solid #e3a3a3;border-radius:4px}
.small{color:#48515b;font-size:.9rem}
.addr{font-weight:600;overflow-wrap:anywhere}
a{color:#0b57a4}
</style>
{{end}}

{{define "title"}}<title>{{.}}</title>
</head>
<body>
<main>
{{end}}

{{define "bottom"}}</main>
</body>
</html>
{{end}}

{{define "newlink"}}{{if .ForgotURL}}<p><a href="{{.ForgotURL}}">{{.T "newlink.link"}}</a></p>
{{else}}{{with .Error}}<p class="error" id="email-error" role="alert">{{.}}</p>
{{end}}<form method="post" action="{{.ForgotAction}}">
<label for="email">{{.T "newlink.email"}}</label>
<input id="email" name="email" type="email" autocomplete="email" inputmode="email" required dir="ltr"{{if .Error}} aria-describedby="email-error" aria-invalid="true"{{end}}>
<button type="submit">{{.T "newlink.submit"}}</button>
</form>
{{end}}{{end}}

{{define "form"}}{{template "top" .}}{{template "title" (.Title "form.title")}}<h1>{{.T "form.title"}}</h1>
<p>{{.T "form.account"}}</p>
{{with .Error}}<p class="error" id="form-error" role="alert">{{.}}</p>
{{end}}<form method="post" action="{{.Action}}">
{{with .Binding}}<input type="hidden" name="binding" value="{{.}}">
{{end}}<input type="email" name="username" autocomplete="username" value="{{.Email}}" readonly hidden>
<label for="newPassword">{{.T "form.new"}}</label>
<input id="newPassword" name="newPassword" type="password" autocomplete="new-password" required{{if .MinLength}} minlength="{{.MinLength}}"{{end}} aria-describedby="newPassword-hint{{if .Error}} form-error{{end}}"{{if .Error}} aria-invalid="true"{{end}}>
<p class="hint" id="newPassword-hint">{{if .MinLength}}{{.T "form.min"}} {{end}}{{.T "form.hint"}}</p>
<label for="confirmPassword">{{.T "form.confirm"}}</label>
<input id="confirmPassword" name="confirmPassword" type="password" autocomplete="new-password" required{{if .MinLength}} minlength="{{.MinLength}}"{{end}}>
<button type="submit">{{.T "form.submit"}}</button>
</form>
<p class="small">{{.T "form.footer"}}</p>
{{template "bottom" .}}{{end}}

{{define "invalid"}}{{template "top" .}}{{if .Expired}}{{template "title" (.Title "expired.title")}}<h1>{{.T "expired.title"}}</h1>
<p>{{.T "expired.text"}}</p>
{{else if .Replaced}}{{template "title" (.Title "replaced.title")}}<h1>{{.T "replaced.title"}}</h1>
<p>{{.T "replaced.text"}}</p>
{{else if .Ambiguous}}{{template "title" (.Title "ambiguous.title")}}<h1>{{.T "ambiguous.title"}}</h1>
<p>{{.T "ambiguous.text"}}</p>
{{else}}{{template "title" (.Title "invalid.title")}}<h1>{{.T "invalid.title"}}</h1>
<p>{{.T "invalid.text"}}</p>
{{end}}<h2>{{.T "newlink.heading"}}</h2>
{{template "newlink" .}}{{template "bottom" .}}{{end}}

{{define "done"}}{{template "top" .}}{{template "title" (.Title "done.title")}}<h1>{{.T "done.title"}}</h1>
<p>{{.T "done.text"}}</p>
{{with .SignInURL}}<p><a href="{{.}}">{{$.T "done.signin"}}</a></p>
{{end}}{{template "bottom" .}}{{end}}

{{define "forgot"}}{{template "top" .}}{{template "title" (.Title "forgot.title")}}<h1>{{.T "forgot.title"}}</h1>
<p>{{.T "forgot.text"}}</p>
{{template "newlink" .}}{{template "bottom" .}}{{end}}

{{define "sent"}}{{template "top" .}}{{template "title" (.Title "sent.title")}}<h1>{{.T "sent.title"}}</h1>
<p>{{.T "sent.text"}}</p>
{{template "bottom" .}}{{end}}

{{define "error"}}{{template "top" .}}{{template "title" (.Title "error.title")}}<h1>{{.T "error.title"}}</h1>
<p role="alert">{{.Message}}</p>
<p class="small">{{.T "error.reference"}}</p>
{{template "bottom" .}}{{end}}
`))

// PageMessages are the shipped texts of the hosted pages, by language and
// key, in the form of [reset.Messages]: text/templates executed with the
// page's [PageData]. Change one, or add a language, with
// [reset.Templates.Messages]: the pages and the emails share it. Keys a
// language lacks fall back to English.
var PageMessages = reset.Messages{
	"en": {
		reset.KeyDir:      "ltr",
		"title":           "{{.Text}} – {{.Product}}",
		"form.title":      "Choose a new password",
		"form.account":    "For the {{.Product}} account {{.Email}}.",
		"form.new":        "New password",
		"form.min":        "At least {{.MinLength}} characters.",
		"form.hint":       "A few unrelated words make a strong password that is easy to remember.",
		"form.confirm":    "New password again",
		"form.submit":     "Set the new password",
		"form.footer":     "This link works once. Did not ask for it? Close this page: your password stays as it is.",
		"form.empty":      "Type a new password.",
		"form.mismatch":   "The two passwords are not the same. Type the new password twice.",
		"form.short":      "The new password must be at least {{.MinLength}} characters long.",
		"form.refused":    "The new password {{.Reason}}.",
		"invalid.title":   "This link does not work",
		"invalid.text":    "It may be incomplete, it may have been used already, or a newer link may have replaced it: only the most recent link works, and only once.",
		"expired.title":   "This link has expired",
		"expired.text":    "For your safety, a link to reset a password works for a limited time only.",
		"replaced.title":  "This form belongs to a link that was replaced",
		"replaced.text":   "Another reset link was opened in this browser after this form, so this form was not used and nothing was changed. Open the link from your email again.",
		"ambiguous.title": "This page cannot tell which link you opened",
		"ambiguous.text":  "Your browser sent this page more than one reset link, perhaps one placed there by another site. To be safe, none was used, and those the page could remove were removed. Open the link from your email again.",
		"newlink.heading": "Get a new link",
		"newlink.link":    "Request a new link",
		"newlink.email":   "Email address",
		"newlink.submit":  "Send me a new link",
		"done.title":      "Your password has been changed",
		"done.text":       "You can now sign in with your new password. You have not been signed in by this page.",
		"done.signin":     "Sign in",
		"forgot.title":    "Reset your password",
		"forgot.text":     "Type the email address of your account and we will send you a link to choose a new password.",
		"forgot.bad":      "Type the email address of your account, such as name@example.com.",
		"sent.title":      "Check your email",
		"sent.text":       "If an account uses this email address, a link to reset its password is on its way. It can take a few minutes; check your spam folder too.",
		"error.title":     "Something went wrong",
		"error.reference": "Error {{.Status}}. Reference: {{.ID}}",
		"error.crossSite": "This form was sent from another site, so it was refused. Open the link from your email again.",
		"error.method":    "This page cannot be used that way.",
		"error.tooLarge":  "The form is too large.",
		"error.mediaType": "This form must be sent by a browser.",
		"error.badForm":   "The form could not be read. Open the link from your email again.",
		"error.tooMany":   "Too many attempts from your network. Wait a minute and try again.",
		"error.ourSide":   "Something went wrong on our side. Please try again in a few minutes.",
	},
	"de": {
		reset.KeyDir:      "ltr",
		"title":           "{{.Text}} – {{.Product}}",
		"form.title":      "Neues Passwort wählen",
		"form.account":    "Für das {{.Product}}-Konto {{.Email}}.",
		"form.new":        "Neues Passwort",
		"form.min":        "Mindestens {{.MinLength}} Zeichen.",
		"form.hint":       "Ein paar Wörter, die nichts miteinander zu tun haben, ergeben ein starkes Passwort, das man sich leicht merkt.",
		"form.confirm":    "Neues Passwort wiederholen",
		"form.submit":     "Neues Passwort speichern",
		"form.footer":     "Dieser Link funktioniert nur einmal. Nicht angefordert? Schließen Sie diese Seite: Ihr Passwort bleibt unverändert.",
		"form.empty":      "Geben Sie ein neues Passwort ein.",
		"form.mismatch":   "Die beiden Passwörter stimmen nicht überein. Geben Sie das neue Passwort zweimal ein.",
		"form.short":      "Das neue Passwort muss mindestens {{.MinLength}} Zeichen lang sein.",
		"form.refused":    "Dieses Passwort kann nicht verwendet werden ({{.Reason}}).",
		"invalid.title":   "Dieser Link funktioniert nicht",
		"invalid.text":    "Er ist vielleicht unvollständig, wurde schon benutzt oder durch einen neueren Link ersetzt: Nur der neueste Link funktioniert, und nur einmal.",
		"expired.title":   "Dieser Link ist abgelaufen",
		"expired.text":    "Zu Ihrer Sicherheit funktioniert ein Link zum Zurücksetzen des Passworts nur eine begrenzte Zeit.",
		"replaced.title":  "Dieses Formular gehört zu einem ersetzten Link",
		"replaced.text":   "Nach diesem Formular wurde in diesem Browser ein anderer Link zum Zurücksetzen geöffnet. Das Formular wurde daher nicht verwendet, und nichts wurde geändert. Öffnen Sie den Link aus Ihrer E-Mail erneut.",
		"ambiguous.title": "Diese Seite kann nicht erkennen, welchen Link Sie geöffnet haben",
		"ambiguous.text":  "Ihr Browser hat dieser Seite mehr als einen Link zum Zurücksetzen gesendet, vielleicht einen, den eine andere Website dort abgelegt hat. Zur Sicherheit wurde keiner verwendet, und die Seite hat entfernt, was sie entfernen konnte. Öffnen Sie den Link aus Ihrer E-Mail erneut.",
		"newlink.heading": "Neuen Link anfordern",
		"newlink.link":    "Einen neuen Link anfordern",
		"newlink.email":   "E-Mail-Adresse",
		"newlink.submit":  "Neuen Link senden",
		"done.title":      "Ihr Passwort wurde geändert",
		"done.text":       "Sie können sich jetzt mit Ihrem neuen Passwort anmelden. Diese Seite hat Sie nicht angemeldet.",
		"done.signin":     "Anmelden",
		"forgot.title":    "Passwort zurücksetzen",
		"forgot.text":     "Geben Sie die E-Mail-Adresse Ihres Kontos ein. Wir senden Ihnen einen Link, mit dem Sie ein neues Passwort wählen.",
		"forgot.bad":      "Geben Sie die E-Mail-Adresse Ihres Kontos ein, etwa name@example.com.",
		"sent.title":      "Sehen Sie in Ihren E-Mails nach",
		"sent.text":       "Wenn ein Konto diese E-Mail-Adresse verwendet, ist ein Link zum Zurücksetzen des Passworts unterwegs. Das kann ein paar Minuten dauern; sehen Sie auch im Spam-Ordner nach.",
		"error.title":     "Etwas ist schiefgelaufen",
		"error.reference": "Fehler {{.Status}}. Referenz: {{.ID}}",
		"error.crossSite": "Dieses Formular wurde von einer anderen Website gesendet und daher abgelehnt. Öffnen Sie den Link aus Ihrer E-Mail erneut.",
		"error.method":    "Diese Seite kann so nicht verwendet werden.",
		"error.tooLarge":  "Das Formular ist zu groß.",
		"error.mediaType": "Dieses Formular muss von einem Browser gesendet werden.",
		"error.badForm":   "Das Formular konnte nicht gelesen werden. Öffnen Sie den Link aus Ihrer E-Mail erneut.",
		"error.tooMany":   "Zu viele Versuche aus Ihrem Netzwerk. Warten Sie eine Minute und versuchen Sie es erneut.",
		"error.ourSide":   "Bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es in ein paar Minuten erneut.",
	},
	"fr": {
		reset.KeyDir:      "ltr",
		"title":           "{{.Text}} – {{.Product}}",
		"form.title":      "Choisissez un nouveau mot de passe",
		"form.account":    "Pour le compte {{.Product}} {{.Email}}.",
		"form.new":        "Nouveau mot de passe",
		"form.min":        "Au moins {{.MinLength}} caractères.",
		"form.hint":       "Quelques mots sans rapport entre eux font un mot de passe solide et facile à retenir.",
		"form.confirm":    "Confirmez le nouveau mot de passe",
		"form.submit":     "Enregistrer le nouveau mot de passe",
		"form.footer":     "Ce lien ne fonctionne qu’une fois. Vous ne l’avez pas demandé ? Fermez cette page : votre mot de passe reste inchangé.",
		"form.empty":      "Saisissez un nouveau mot de passe.",
		"form.mismatch":   "Les deux mots de passe ne sont pas identiques. Saisissez deux fois le nouveau mot de passe.",
		"form.short":      "Le nouveau mot de passe doit comporter au moins {{.MinLength}} caractères.",
		"form.refused":    "Ce mot de passe ne peut pas être utilisé ({{.Reason}}).",
		"invalid.title":   "Ce lien ne fonctionne pas",
		"invalid.text":    "Il est peut-être incomplet, a déjà été utilisé ou a été remplacé par un lien plus récent : seul le dernier lien fonctionne, et une seule fois.",
		"expired.title":   "Ce lien a expiré",
		"expired.text":    "Pour votre sécurité, un lien de réinitialisation ne fonctionne que pendant une durée limitée.",
		"replaced.title":  "Ce formulaire appartient à un lien remplacé",
		"replaced.text":   "Un autre lien de réinitialisation a été ouvert dans ce navigateur après ce formulaire : ce formulaire n’a donc pas été utilisé et rien n’a été modifié. Rouvrez le lien de votre e-mail.",
		"ambiguous.title": "Cette page ne peut pas savoir quel lien vous avez ouvert",
		"ambiguous.text":  "Votre navigateur a envoyé à cette page plus d’un lien de réinitialisation, peut-être un lien déposé par un autre site. Par sécurité, aucun n’a été utilisé, et la page a supprimé ceux qu’elle pouvait. Rouvrez le lien de votre e-mail.",
		"newlink.heading": "Obtenir un nouveau lien",
		"newlink.link":    "Demander un nouveau lien",
		"newlink.email":   "Adresse e-mail",
		"newlink.submit":  "M’envoyer un nouveau lien",
		"done.title":      "Votre mot de passe a été modifié",
		"done.text":       "Vous pouvez maintenant vous connecter avec votre nouveau mot de passe. Cette page ne vous a pas connecté.",
		"done.signin":     "Se connecter",
		"forgot.title":    "Réinitialisez votre mot de passe",
		"forgot.text":     "Saisissez l’adresse e-mail de votre compte : nous vous enverrons un lien pour choisir un nouveau mot de passe.",
		"forgot.bad":      "Saisissez l’adresse e-mail de votre compte, par exemple nom@example.com.",
		"sent.title":      "Consultez votre messagerie",
		"sent.text":       "Si un compte utilise cette adresse e-mail, un lien pour réinitialiser son mot de passe est en route. Cela peut prendre quelques minutes ; vérifiez aussi vos courriers indésirables.",
		"error.title":     "Une erreur s’est produite",
		"error.reference": "Erreur {{.Status}}. Référence : {{.ID}}",
		"error.crossSite": "Ce formulaire a été envoyé depuis un autre site ; il a donc été refusé. Rouvrez le lien de votre e-mail.",
		"error.method":    "Cette page ne peut pas être utilisée de cette façon.",
		"error.tooLarge":  "Le formulaire est trop volumineux.",
		"error.mediaType": "Ce formulaire doit être envoyé par un navigateur.",
		"error.badForm":   "Le formulaire n’a pas pu être lu. Rouvrez le lien de votre e-mail.",
		"error.tooMany":   "Trop de tentatives depuis votre réseau. Attendez une minute et réessayez.",
		"error.ourSide":   "Une erreur s’est produite de notre côté. Réessayez dans quelques minutes.",
	},
	"es": {
		reset.KeyDir:      "ltr",
		"title":           "{{.Text}} – {{.Product}}",
		"form.title":      "Elige una contraseña nueva",
		"form.account":    "Para la cuenta de {{.Product}} {{.Email}}.",
		"form.new":        "Contraseña nueva",
		"form.min":        "Al menos {{.MinLength}} caracteres.",
		"form.hint":       "Unas cuantas palabras sin relación entre sí forman una contraseña segura y fácil de recordar.",
		"form.confirm":    "Repite la contraseña nueva",
		"form.submit":     "Guardar la contraseña nueva",
		"form.footer":     "Este enlace solo funciona una vez. ¿No lo has pedido? Cierra esta página: tu contraseña no cambiará.",
		"form.empty":      "Escribe una contraseña nueva.",
		"form.mismatch":   "Las dos contraseñas no coinciden. Escribe la contraseña nueva dos veces.",
		"form.short":      "La contraseña nueva debe tener al menos {{.MinLength}} caracteres.",
		"form.refused":    "No se puede usar esta contraseña ({{.Reason}}).",
		"invalid.title":   "Este enlace no funciona",
		"invalid.text":    "Puede que esté incompleto, que ya se haya usado o que otro más reciente lo haya sustituido: solo funciona el enlace más reciente, y una sola vez.",
		"expired.title":   "Este enlace ha caducado",
		"expired.text":    "Por tu seguridad, un enlace para restablecer la contraseña solo funciona durante un tiempo limitado.",
		"replaced.title":  "Este formulario pertenece a un enlace sustituido",
		"replaced.text":   "Después de este formulario se abrió otro enlace de restablecimiento en este navegador, así que este formulario no se ha usado y no ha cambiado nada. Vuelve a abrir el enlace de tu correo.",
		"ambiguous.title": "Esta página no puede saber qué enlace has abierto",
		"ambiguous.text":  "Tu navegador ha enviado a esta página más de un enlace de restablecimiento, quizá uno que puso ahí otro sitio. Por seguridad no se ha usado ninguno, y la página ha quitado los que ha podido. Vuelve a abrir el enlace de tu correo.",
		"newlink.heading": "Obtener un enlace nuevo",
		"newlink.link":    "Solicitar un enlace nuevo",
		"newlink.email":   "Correo electrónico",
		"newlink.submit":  "Enviarme un enlace nuevo",
		"done.title":      "Se ha cambiado tu contraseña",
		"done.text":       "Ya puedes iniciar sesión con tu contraseña nueva. Esta página no ha iniciado sesión por ti.",
		"done.signin":     "Iniciar sesión",
		"forgot.title":    "Restablece tu contraseña",
		"forgot.text":     "Escribe el correo electrónico de tu cuenta y te enviaremos un enlace para elegir una contraseña nueva.",
		"forgot.bad":      "Escribe el correo electrónico de tu cuenta, por ejemplo nombre@example.com.",
		"sent.title":      "Revisa tu correo",
		"sent.text":       "Si alguna cuenta usa este correo electrónico, le hemos enviado un enlace para restablecer su contraseña. Puede tardar unos minutos; revisa también la carpeta de spam.",
		"error.title":     "Algo ha salido mal",
		"error.reference": "Error {{.Status}}. Referencia: {{.ID}}",
		"error.crossSite": "Este formulario se envió desde otro sitio, por lo que se ha rechazado. Vuelve a abrir el enlace de tu correo.",
		"error.method":    "Esta página no se puede usar de esa forma.",
		"error.tooLarge":  "El formulario es demasiado grande.",
		"error.mediaType": "Este formulario debe enviarlo un navegador.",
		"error.badForm":   "No se ha podido leer el formulario. Vuelve a abrir el enlace de tu correo.",
		"error.tooMany":   "Demasiados intentos desde tu red. Espera un minuto y vuelve a intentarlo.",
		"error.ourSide":   "Algo ha salido mal por nuestra parte. Vuelve a intentarlo dentro de unos minutos.",
	},
	"pt-BR": {
		reset.KeyDir:      "ltr",
		"title":           "{{.Text}} – {{.Product}}",
		"form.title":      "Escolha uma nova senha",
		"form.account":    "Para a conta do {{.Product}} {{.Email}}.",
		"form.new":        "Nova senha",
		"form.min":        "Pelo menos {{.MinLength}} caracteres.",
		"form.hint":       "Algumas palavras sem relação entre si formam uma senha forte e fácil de lembrar.",
		"form.confirm":    "Repita a nova senha",
		"form.submit":     "Salvar a nova senha",
		"form.footer":     "Este link funciona uma única vez. Não pediu? Feche esta página: sua senha continua a mesma.",
		"form.empty":      "Digite uma nova senha.",
		"form.mismatch":   "As duas senhas não são iguais. Digite a nova senha duas vezes.",
		"form.short":      "A nova senha deve ter pelo menos {{.MinLength}} caracteres.",
		"form.refused":    "Esta senha não pode ser usada ({{.Reason}}).",
		"invalid.title":   "Este link não funciona",
		"invalid.text":    "Ele pode estar incompleto, já ter sido usado ou ter sido substituído por um link mais recente: só o link mais recente funciona, e uma única vez.",
		"expired.title":   "Este link expirou",
		"expired.text":    "Para sua segurança, um link de redefinição de senha funciona só por um tempo limitado.",
		"replaced.title":  "Este formulário pertence a um link que foi substituído",
		"replaced.text":   "Outro link de redefinição foi aberto neste navegador depois deste formulário; por isso este formulário não foi usado e nada foi alterado. Abra de novo o link do seu e-mail.",
		"ambiguous.title": "Esta página não consegue saber qual link você abriu",
		"ambiguous.text":  "Seu navegador enviou a esta página mais de um link de redefinição, talvez um colocado ali por outro site. Por segurança, nenhum foi usado, e a página removeu os que pôde. Abra de novo o link do seu e-mail.",
		"newlink.heading": "Receber um novo link",
		"newlink.link":    "Pedir um novo link",
		"newlink.email":   "Endereço de e-mail",
		"newlink.submit":  "Enviar um novo link",
		"done.title":      "Sua senha foi alterada",
		"done.text":       "Agora você pode entrar com a nova senha. Esta página não fez o login por você.",
		"done.signin":     "Entrar",
		"forgot.title":    "Redefina sua senha",
		"forgot.text":     "Digite o endereço de e-mail da sua conta e enviaremos um link para você escolher uma nova senha.",
		"forgot.bad":      "Digite o endereço de e-mail da sua conta, como nome@example.com.",
		"sent.title":      "Confira seu e-mail",
		"sent.text":       "Se alguma conta usa este endereço de e-mail, um link para redefinir a senha está a caminho. Pode levar alguns minutos; confira também a pasta de spam.",
		"error.title":     "Algo deu errado",
		"error.reference": "Erro {{.Status}}. Referência: {{.ID}}",
		"error.crossSite": "Este formulário foi enviado de outro site e por isso foi recusado. Abra de novo o link do seu e-mail.",
		"error.method":    "Esta página não pode ser usada dessa forma.",
		"error.tooLarge":  "O formulário é grande demais.",
		"error.mediaType": "Este formulário precisa ser enviado por um navegador.",
		"error.badForm":   "Não foi possível ler o formulário. Abra de novo o link do seu e-mail.",
		"error.tooMany":   "Muitas tentativas a partir da sua rede. Aguarde um minuto e tente de novo.",
		"error.ourSide":   "Algo deu errado do nosso lado. Tente de novo em alguns minutos.",
	},
	"ja": {
		reset.KeyDir:      "ltr",
		"title":           "{{.Text}} – {{.Product}}",
		"form.title":      "新しいパスワードの設定",
		"form.account":    "{{.Product}} アカウント {{.Email}} のパスワードを設定します。",
		"form.new":        "新しいパスワード",
		"form.min":        "{{.MinLength}}文字以上。",
		"form.hint":       "互いに関係のない単語をいくつか並べると、覚えやすく強いパスワードになります。",
		"form.confirm":    "新しいパスワード（確認）",
		"form.submit":     "新しいパスワードを設定する",
		"form.footer":     "このリンクは一度だけ使えます。心当たりがない場合は、このページを閉じてください。パスワードは変更されません。",
		"form.empty":      "新しいパスワードを入力してください。",
		"form.mismatch":   "2つのパスワードが一致しません。新しいパスワードを2回入力してください。",
		"form.short":      "新しいパスワードは{{.MinLength}}文字以上にしてください。",
		"form.refused":    "このパスワードは使えません（{{.Reason}}）。",
		"invalid.title":   "このリンクは無効です",
		"invalid.text":    "リンクが途中で切れているか、すでに使われたか、新しいリンクに置き換えられた可能性があります。使えるのは最新のリンクだけで、一度だけです。",
		"expired.title":   "このリンクは有効期限が切れています",
		"expired.text":    "安全のため、パスワード再設定のリンクは一定時間しか使えません。",
		"replaced.title":  "このフォームは置き換えられたリンクのものです",
		"replaced.text":   "このフォームの後に、このブラウザで別のパスワード再設定リンクが開かれました。そのため、このフォームは使われず、何も変更されていません。メールのリンクをもう一度開いてください。",
		"ambiguous.title": "どのリンクを開いたのか判断できません",
		"ambiguous.text":  "お使いのブラウザから、このページに複数の再設定リンクが送られました。別のサイトが置いたものかもしれません。安全のため、どれも使わず、削除できるものは削除しました。メールのリンクをもう一度開いてください。",
		"newlink.heading": "新しいリンクを受け取る",
		"newlink.link":    "新しいリンクを依頼する",
		"newlink.email":   "メールアドレス",
		"newlink.submit":  "新しいリンクを送信",
		"done.title":      "パスワードを変更しました",
		"done.text":       "新しいパスワードでログインできます。このページではログインしていません。",
		"done.signin":     "ログイン",
		"forgot.title":    "パスワードの再設定",
		"forgot.text":     "アカウントのメールアドレスを入力してください。新しいパスワードを設定するためのリンクをお送りします。",
		"forgot.bad":      "アカウントのメールアドレスを入力してください（例: name@example.com）。",
		"sent.title":      "メールをご確認ください",
		"sent.text":       "このメールアドレスのアカウントがある場合は、パスワード再設定のリンクを送信しました。届くまで数分かかることがあります。迷惑メールフォルダもご確認ください。",
		"error.title":     "問題が発生しました",
		"error.reference": "エラー {{.Status}}。参照番号: {{.ID}}",
		"error.crossSite": "このフォームは別のサイトから送信されたため、受け付けられませんでした。メールのリンクをもう一度開いてください。",
		"error.method":    "このページはその方法では使えません。",
		"error.tooLarge":  "フォームが大きすぎます。",
		"error.mediaType": "このフォームはブラウザから送信してください。",
		"error.badForm":   "フォームを読み取れませんでした。メールのリンクをもう一度開いてください。",
		"error.tooMany":   "お使いのネットワークからの試行が多すぎます。1分待ってからもう一度お試しください。",
		"error.ourSide":   "こちら側で問題が発生しました。数分後にもう一度お試しください。",
	},
	"zh-Hans": {
		reset.KeyDir:      "ltr",
		"title":           "{{.Text}} – {{.Product}}",
		"form.title":      "设置新密码",
		"form.account":    "{{.Product}} 帐户 {{.Email}}。",
		"form.new":        "新密码",
		"form.min":        "至少 {{.MinLength}} 个字符。",
		"form.hint":       "几个互不相关的词语可以组成既安全又好记的密码。",
		"form.confirm":    "再次输入新密码",
		"form.submit":     "保存新密码",
		"form.footer":     "此链接只能使用一次。不是您本人请求的？请关闭此页面：您的密码不会改变。",
		"form.empty":      "请输入新密码。",
		"form.mismatch":   "两次输入的密码不一致。请将新密码输入两次。",
		"form.short":      "新密码至少需要 {{.MinLength}} 个字符。",
		"form.refused":    "无法使用此密码（{{.Reason}}）。",
		"invalid.title":   "此链接无效",
		"invalid.text":    "链接可能不完整、已被使用，或已被更新的链接取代：只有最新的链接有效，且只能使用一次。",
		"expired.title":   "此链接已过期",
		"expired.text":    "为了您的安全，重置密码的链接只在有限时间内有效。",
		"replaced.title":  "此表单属于已被取代的链接",
		"replaced.text":   "在打开此表单之后，此浏览器中又打开了另一个重置链接，因此此表单未被使用，也没有任何更改。请重新打开邮件中的链接。",
		"ambiguous.title": "此页面无法确定您打开的是哪个链接",
		"ambiguous.text":  "您的浏览器向此页面发送了多个重置链接，其中可能有其他网站放置的链接。为安全起见，没有使用其中任何一个，并已删除能够删除的链接。请重新打开邮件中的链接。",
		"newlink.heading": "获取新链接",
		"newlink.link":    "申请新链接",
		"newlink.email":   "电子邮件地址",
		"newlink.submit":  "给我发送新链接",
		"done.title":      "您的密码已更改",
		"done.text":       "现在可以使用新密码登录。此页面没有为您登录。",
		"done.signin":     "登录",
		"forgot.title":    "重置密码",
		"forgot.text":     "请输入您帐户的电子邮件地址，我们会向您发送设置新密码的链接。",
		"forgot.bad":      "请输入您帐户的电子邮件地址，例如 name@example.com。",
		"sent.title":      "请查收邮件",
		"sent.text":       "如果有帐户使用此电子邮件地址，重置密码的链接已经发出。可能需要几分钟才能收到；也请检查垃圾邮件文件夹。",
		"error.title":     "出错了",
		"error.reference": "错误 {{.Status}}。参考编号：{{.ID}}",
		"error.crossSite": "此表单是从其他网站提交的，因此已被拒绝。请重新打开邮件中的链接。",
		"error.method":    "不能以这种方式使用此页面。",
		"error.tooLarge":  "表单过大。",
		"error.mediaType": "此表单必须由浏览器提交。",
		"error.badForm":   "无法读取表单。请重新打开邮件中的链接。",
		"error.tooMany":   "来自您网络的尝试次数过多。请等待一分钟后再试。",
		"error.ourSide":   "我们这边出了问题。请几分钟后再试。",
	},
	"ar": {
		reset.KeyDir:      "rtl",
		"title":           "{{.Text}} – {{.Product}}",
		"form.title":      "اختر كلمة مرور جديدة",
		"form.account":    "لحساب {{.Product}} الخاص بالعنوان {{.Email}}.",
		"form.new":        "كلمة المرور الجديدة",
		"form.min":        "{{.MinLength}} أحرف على الأقل.",
		"form.hint":       "بضع كلمات لا علاقة بينها تصنع كلمة مرور قوية يسهل تذكرها.",
		"form.confirm":    "أعد كتابة كلمة المرور الجديدة",
		"form.submit":     "حفظ كلمة المرور الجديدة",
		"form.footer":     "يعمل هذا الرابط مرة واحدة فقط. لم تطلبه؟ أغلق هذه الصفحة: ستبقى كلمة مرورك كما هي.",
		"form.empty":      "اكتب كلمة مرور جديدة.",
		"form.mismatch":   "كلمتا المرور غير متطابقتين. اكتب كلمة المرور الجديدة مرتين.",
		"form.short":      "يجب ألا تقل كلمة المرور الجديدة عن {{.MinLength}} أحرف.",
		"form.refused":    "لا يمكن استخدام كلمة المرور هذه ({{.Reason}}).",
		"invalid.title":   "هذا الرابط لا يعمل",
		"invalid.text":    "ربما يكون ناقصًا، أو استُخدم من قبل، أو حلّ محله رابط أحدث: يعمل أحدث رابط فقط، ومرة واحدة فقط.",
		"expired.title":   "انتهت صلاحية هذا الرابط",
		"expired.text":    "حرصًا على أمانك، يعمل رابط إعادة تعيين كلمة المرور لمدة محدودة فقط.",
		"replaced.title":  "هذا النموذج يخص رابطًا حلّ محله رابط آخر",
		"replaced.text":   "فُتح رابط آخر لإعادة التعيين في هذا المتصفح بعد هذا النموذج، لذا لم يُستخدم هذا النموذج ولم يتغير شيء. افتح الرابط من بريدك الإلكتروني مرة أخرى.",
		"ambiguous.title": "لا تستطيع هذه الصفحة معرفة الرابط الذي فتحته",
		"ambiguous.text":  "أرسل متصفحك إلى هذه الصفحة أكثر من رابط لإعادة التعيين، ربما وضع أحدها موقع آخر. حرصًا على أمانك لم يُستخدم أي منها، وأزالت الصفحة ما استطاعت إزالته. افتح الرابط من بريدك الإلكتروني مرة أخرى.",
		"newlink.heading": "الحصول على رابط جديد",
		"newlink.link":    "طلب رابط جديد",
		"newlink.email":   "عنوان البريد الإلكتروني",
		"newlink.submit":  "أرسل لي رابطًا جديدًا",
		"done.title":      "تم تغيير كلمة المرور",
		"done.text":       "يمكنك الآن تسجيل الدخول بكلمة المرور الجديدة. لم تسجّل هذه الصفحة دخولك.",
		"done.signin":     "تسجيل الدخول",
		"forgot.title":    "إعادة تعيين كلمة المرور",
		"forgot.text":     "اكتب عنوان البريد الإلكتروني لحسابك وسنرسل إليك رابطًا لاختيار كلمة مرور جديدة.",
		"forgot.bad":      "اكتب عنوان البريد الإلكتروني لحسابك، مثل name@example.com.",
		"sent.title":      "تحقق من بريدك الإلكتروني",
		"sent.text":       "إذا كان هناك حساب يستخدم هذا العنوان، فقد أُرسل إليه رابط لإعادة تعيين كلمة المرور. قد يستغرق ذلك بضع دقائق؛ تحقق أيضًا من مجلد الرسائل غير المرغوب فيها.",
		"error.title":     "حدث خطأ ما",
		"error.reference": "الخطأ {{.Status}}. المرجع: {{.ID}}",
		"error.crossSite": "أُرسل هذا النموذج من موقع آخر، لذا رُفض. افتح الرابط من بريدك الإلكتروني مرة أخرى.",
		"error.method":    "لا يمكن استخدام هذه الصفحة بهذه الطريقة.",
		"error.tooLarge":  "النموذج كبير جدًا.",
		"error.mediaType": "يجب إرسال هذا النموذج من متصفح.",
		"error.badForm":   "تعذرت قراءة النموذج. افتح الرابط من بريدك الإلكتروني مرة أخرى.",
		"error.tooMany":   "محاولات كثيرة جدًا من شبكتك. انتظر دقيقة ثم حاول مرة أخرى.",
		"error.ourSide":   "حدث خطأ من جهتنا. يُرجى المحاولة مرة أخرى بعد بضع دقائق.",
	},
}
