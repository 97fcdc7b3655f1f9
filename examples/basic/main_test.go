package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/passreset/passreset/httpadapter"
)

// demo is a running instance of the program, and its output read line by line.
type demo struct {
	t      *testing.T
	lines  chan string
	base   string            // the listen URL
	banner []string          // the lines printed at start
	curl   map[string]string // the printed curl commands, by the line before them
}

// start runs the program with args and waits for its listen line and banner.
func start(t *testing.T, args ...string) *demo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), pw)
		pw.Close()
		done <- err
	}()
	d := &demo{t: t, lines: make(chan string, 256), curl: map[string]string{}}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		go func() {
			for range d.lines { // keep the program's writes flowing
			}
		}()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	first := d.next()
	if !strings.HasPrefix(first, "listening on http://") {
		t.Fatalf("first line %q", first)
	}
	d.base = strings.TrimPrefix(first, "listening on ")
	prev := ""
	for {
		line := d.next()
		d.banner = append(d.banner, line)
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "curl ") {
			d.curl[prev] = s
		} else if s != "" {
			prev = s
		}
		if strings.HasPrefix(line, "Emails are printed below") {
			return d
		}
	}
}

// next returns the next line of output, failing after a generous timeout.
func (d *demo) next() string {
	d.t.Helper()
	select {
	case line, ok := <-d.lines:
		if !ok {
			d.t.Fatal("the program's output ended")
		}
		return line
	case <-time.After(2 * time.Minute): // a bound against a hang, not a speed
		d.t.Fatal("no output")
	}
	return ""
}

// command returns the curl command printed after a line starting with prefix.
func (d *demo) command(prefix string) string {
	d.t.Helper()
	for k, v := range d.curl {
		if strings.HasPrefix(k, prefix) {
			return v
		}
	}
	d.t.Fatalf("no curl command after %q in\n%s", prefix, strings.Join(d.banner, "\n"))
	return ""
}

// banner value after a label, such as "password: ".
func (d *demo) value(label string) string {
	d.t.Helper()
	for _, line := range d.banner {
		if i := strings.Index(line, label); i >= 0 {
			return strings.Fields(line[i+len(label):])[0]
		}
	}
	d.t.Fatalf("no %q in the banner", label)
	return ""
}

// email reads output until an email whose link starts with prefix, and
// returns the link.
func (d *demo) email(prefix string) string {
	d.t.Helper()
	for {
		line := d.next()
		if strings.HasPrefix(line, prefix) && strings.Contains(line, "token=") {
			return strings.TrimSpace(line)
		}
	}
}

// curl does what a printed curl command does; it understands the options
// the program prints (-i, -u, -H, -d) and single-quoted words.
func curl(t *testing.T, cmd string) (int, string) {
	t.Helper()
	words := shellWords(t, cmd)
	if words[0] != "curl" {
		t.Fatalf("not a curl command: %q", cmd)
	}
	var user, body, target string
	hdr := http.Header{}
	for i := 1; i < len(words); i++ {
		switch w := words[i]; w {
		case "-i":
		case "-u":
			i++
			user = words[i]
		case "-H":
			i++
			k, v, _ := strings.Cut(words[i], ":")
			hdr.Set(k, strings.TrimSpace(v))
		case "-d":
			i++
			body = words[i]
		default:
			if strings.HasPrefix(w, "-") || target != "" {
				t.Fatalf("unexpected curl word %q in %q", w, cmd)
			}
			target = w
		}
	}
	method := http.MethodGet
	if body != "" {
		method = http.MethodPost
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", "application/x-www-form-urlencoded") // as curl does
		}
	}
	r, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = hdr
	if user != "" {
		id, secret, _ := strings.Cut(user, ":")
		r.SetBasicAuth(id, secret)
	}
	return do(t, r)
}

// browser keeps cookies, as a browser does: the reset page moves the
// link's token into a cookie and redirects to a clean address.
var browser = func() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	return &http.Client{Jar: jar}
}()

func do(t *testing.T, r *http.Request) (int, string) {
	t.Helper()
	resp, err := browser.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// shellWords splits a command line as a POSIX shell would, for the
// quoting the program uses: single-quoted words, and backslash escapes
// outside quotes (which is how a quote inside a quoted word is written).
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in, inWord := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in && c == '\'':
			in = false
		case in:
			cur.WriteByte(c)
		case c == '\'':
			in, inWord = true, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if in {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func login(t *testing.T, base, email, password string) int {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	r, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(string(b)))
	r.Header.Set("Content-Type", "application/json")
	code, _ := do(t, r)
	return code
}

func postForm(t *testing.T, target string, v url.Values) (int, string) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, r)
}

// TestDemo follows the path of a new user: the printed curl commands, the
// emailed link, the form, then /login with the new and the old password.
func TestDemo(t *testing.T) {
	d := start(t)
	oldPassword := d.value("password: ")

	// PingOne's example request, as printed.
	code, body := curl(t, d.command("PingOne's example request"))
	if code != 200 || !strings.HasPrefix(body, `{"link":"https://anywhere.com/reset?token=`) {
		t.Fatalf("seed request: %d %s", code, body)
	}
	d.email("https://anywhere.com/reset?token=")

	// The same without a link: the email links to the hosted page.
	code, body = curl(t, d.command("The same without"))
	if code != 200 {
		t.Fatalf("trusted request: %d %s", code, body)
	}
	var resp struct{ Link string }
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	link := d.email(d.base + mount + "/reset?token=")
	if link != resp.Link {
		t.Fatalf("emailed link %q, response link %q", link, resp.Link)
	}
	token := link[strings.Index(link, "token=")+len("token="):]

	// Open the link: the token moves into a cookie, the browser lands on
	// the clean address, and the form holds no token.
	code, page := do(t, mustRequest(t, http.MethodGet, link))
	if code != 200 || strings.Contains(page, token) || !strings.Contains(page, `autocomplete="new-password"`) {
		t.Fatalf("page: %d\n%s", code, page)
	}
	// Submit it, first with passwords that differ.
	formURL := d.base + mount + "/reset"
	code, page = postForm(t, formURL, url.Values{"token": {token}, "newPassword": {"brand new passphrase"}, "confirmPassword": {"brand new passphrose"}})
	if code != 400 || !strings.Contains(page, "not the same") {
		t.Fatalf("mismatch: %d\n%s", code, page)
	}
	// A common password, or one containing the address's local part, is
	// refused with 400 naming newPassword, by the API and by the page,
	// and the link keeps working.
	for pw, why := range map[string]string{
		"password1234567":          "too common",
		"jborder loves long walks": "must not contain your email address",
	} {
		r := mustRequest(t, http.MethodPost, d.base+mount+"/users/password-reset")
		r.Body = io.NopCloser(strings.NewReader(`{"confirmationToken":"` + token + `","newPassword":"` + pw + `"}`))
		r.Header.Set("Content-Type", "application/json")
		code, body := do(t, r)
		if code != 400 || !strings.Contains(body, `"newPassword"`) {
			t.Errorf("API, %q: %d %s", pw, code, body)
		}
		code, page = postForm(t, formURL, url.Values{"token": {token}, "newPassword": {pw}, "confirmPassword": {pw}})
		if code != 400 || !strings.Contains(page, why) {
			t.Errorf("page, %q: %d, want 400 saying %q\n%s", pw, code, why, page)
		}
	}
	// A 64-character Cyrillic passphrase (128 bytes, beyond bcrypt's 72)
	// is accepted and hashed whole.
	newPassword := strings.Repeat("новый ключ ", 6) // 66 characters
	code, page = postForm(t, formURL, url.Values{"token": {token}, "newPassword": {newPassword}, "confirmPassword": {newPassword}})
	if code != 200 || !strings.Contains(page, "Your password has been changed") {
		t.Fatalf("submit: %d\n%s", code, page)
	}

	if got := login(t, d.base, seedEmail, newPassword); got != 200 {
		t.Errorf("login with the new password: %d", got)
	}
	if got := login(t, d.base, seedEmail, strings.TrimSuffix(newPassword, "ключ ")+"ключи"); got != 401 {
		t.Errorf("login with the password changed after byte 72: %d", got)
	}
	if got := login(t, d.base, seedEmail, oldPassword); got != 401 {
		t.Errorf("login with the old password: %d", got)
	}
	if got := login(t, d.base, "nobody@anywhere.com", oldPassword); got != 401 {
		t.Errorf("login with an unknown address: %d", got)
	}

	// The used link is refused.
	code, page = do(t, mustRequest(t, http.MethodGet, link))
	if code != 400 || !strings.Contains(page, "This link does not work") {
		t.Fatalf("used link: %d\n%s", code, page)
	}
	code, _ = postForm(t, formURL, url.Values{"token": {token}, "newPassword": {"another passphrase"}, "confirmPassword": {"another passphrase"}})
	if code != 400 {
		t.Fatalf("used link, POST: %d", code)
	}
	if got := login(t, d.base, seedEmail, newPassword); got != 200 {
		t.Errorf("the password changed after the link was used: %d", got)
	}

	// The public request, as printed, gets the one public answer.
	code, body = curl(t, d.command(`A public "forgot password" request`))
	if code != 202 || strings.Contains(body, "token") {
		t.Fatalf("public request: %d %s", code, body)
	}
	// The printed login command uses the old password: now 401.
	if code, _ := curl(t, d.command("Then sign in")); code != 401 {
		t.Errorf("printed login command after the reset: %d", code)
	}
}

func TestPublicURLFlag(t *testing.T) {
	d := start(t, "-public-url", "https://demo.example/", "-client-id", "me", "-client-secret", "it's secret")
	cmd := d.command("The same without")
	if !strings.Contains(cmd, `-u 'me:it'\''s secret'`) || !strings.Contains(cmd, "https://demo.example/api/directory/users/password-lost") {
		t.Fatalf("command %q", cmd)
	}
	// Send it to the real address; the link uses the public URL.
	cmd = strings.ReplaceAll(cmd, "https://demo.example", d.base)
	code, body := curl(t, cmd)
	if code != 200 || !strings.HasPrefix(body, `{"link":"https://demo.example/api/directory/reset?token=`) {
		t.Fatalf("%d %s", code, body)
	}
	// A custom link under the public URL is allowed; elsewhere it is not.
	r := mustRequest(t, http.MethodPost, d.base+mount+"/users/password-lost")
	r.Body = io.NopCloser(strings.NewReader(`{"email":"jborder@anywhere.com","link":"https://demo.example/account/reset","skipSend":"enabled"}`))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth("me", "it's secret")
	if code, body := do(t, r); code != 200 {
		t.Fatalf("link under the public URL: %d %s", code, body)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-bogus"}, {"extra"}, {"-client-secret", ""}, {"-addr", "127.0.0.1:0", "-public-url", "ftp://x"}, {"-addr", "127.0.0.1:0", "-public-url", "https://x.example/?a=b"}, {"-addr", "256.0.0.1:1"}} {
		if err := run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func mustRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The seeded second-factor account completes a reset only with a valid
// TOTP code, and the reset ends its sessions.
func TestDemoSecondFactor(t *testing.T) {
	d := start(t)
	secret := d.value("TOTP secret: ")
	mfaPassword := d.value("Second-factor user: " + mfaEmail + "  password: ")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar}
	login := func(pw string) int {
		t.Helper()
		res, err := client.Post(d.base+"/login", "application/json", strings.NewReader(`{"email":"`+mfaEmail+`","password":"`+pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	me := func() int {
		t.Helper()
		res, err := client.Get(d.base + "/me")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if login(mfaPassword) != 200 || me() != 200 {
		t.Fatal("the seeded second-factor user cannot sign in")
	}

	lost := strings.Replace(d.command("The same without"), seedEmail, mfaEmail, 1)
	if code, body := curl(t, lost); code != 200 {
		t.Fatalf("trusted request: %d %s", code, body)
	}
	link := d.email(d.base + mount + "/reset?token=")
	token := link[strings.Index(link, "token=")+len("token="):]
	api := d.base + mount + httpadapter.PasswordResetPath
	post := func(body string) (int, string) {
		t.Helper()
		r := mustRequest(t, http.MethodPost, api)
		r.Header.Set("Content-Type", "application/json")
		r.Body = io.NopCloser(strings.NewReader(body))
		return do(t, r)
	}
	body := `{"confirmationToken":"` + token + `","newPassword":"brand new passphrase"`
	if code, res := post(body + `}`); code != 400 || !strings.Contains(res, `"SECOND_FACTOR_REQUIRED"`) || !strings.Contains(res, `"secondFactorCode"`) {
		t.Fatalf("without a code: %d %s", code, res)
	}
	valid, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, valid)+500000)%1000000)
	if code, res := post(body + `,"secondFactorCode":"` + wrong + `"}`); code != 400 || !strings.Contains(res, `"SECOND_FACTOR_INVALID"`) {
		t.Fatalf("wrong code: %d %s", code, res)
	}
	if login("brand new passphrase") != 401 || me() != 200 {
		t.Fatal("a refused completion changed the password or ended the session")
	}
	if code, res := post(body + `,"secondFactorCode":"` + valid + `"}`); code != 200 {
		t.Fatalf("valid code: %d %s", code, res)
	}
	if me() != 401 {
		t.Error("the session survived the reset")
	}
	if login("brand new passphrase") != 200 {
		t.Error("the new password does not sign in")
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
