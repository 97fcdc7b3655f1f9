package smtpmailer_test

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/passreset/passreset/mailer/smtpmailer"
)

// fakeSMTP is a tiny SMTP server of the tests' own, for what Mailpit
// cannot do: any reply code at any step, silence, dropped connections.
// Its reply function is asked at each step and returns the reply line,
// "" for the usual success, or one of the actions below.
type fakeSMTP struct {
	ln    net.Listener
	reply func(conn int, step string) string
	// cram, when set as "user:secret", makes EHLO offer only AUTH
	// CRAM-MD5 and checks the client's answer.
	cram string
	// accepted, when set, receives the number of each connection as the
	// server accepts it.
	accepted chan int
	// echo, when set, makes the server as hostile as a careless one: EHLO
	// offers AUTH PLAIN LOGIN, and every error reply quotes every line the
	// client sent on the connection so far, AUTH exchange included. At
	// echo's step ("AUTH" or "RCPT") it refuses with 5xx; before it, it
	// accepts.
	echo string

	mu       sync.Mutex
	conns    []net.Conn
	messages []string
	wg       sync.WaitGroup
}

// Actions a reply function may return.
const (
	hang          = "hang"            // say nothing more; wait until the client leaves
	drop          = "drop"            // close the connection without a reply
	dropMidData   = "drop mid-data"   // to DATA: 354, read one line of the data, close
	acceptAndDrop = "accept and drop" // to the end of the data: 250, then close
)

func newFake(tb testing.TB, reply func(conn int, step string) string) *fakeSMTP {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fakeSMTP{ln: ln, reply: reply}
	if f.reply == nil {
		f.reply = func(int, string) string { return "" }
	}
	f.wg.Add(1)
	go f.serve()
	tb.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

// options returns Options for a Mailer that sends to f.
func (f *fakeSMTP) options(o smtpmailer.Options) smtpmailer.Options {
	o.Host, o.Port, o.TLS = "127.0.0.1", f.ln.Addr().(*net.TCPAddr).Port, smtpmailer.TLSNone
	if o.From == "" {
		o.From = "security@acme.example"
	}
	return o
}

// connections returns how many connections f accepted.
func (f *fakeSMTP) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// received returns the data of every message f read to its end.
func (f *fakeSMTP) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.messages...)
}

func (f *fakeSMTP) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		n := len(f.conns)
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			if f.accepted != nil {
				f.accepted <- n
			}
			f.session(n, c)
		}()
	}
}

// session speaks SMTP on c until the client quits or an action ends it.
func (f *fakeSMTP) session(n int, c net.Conn) {
	tp := textproto.NewConn(c)
	var history []string // every line the client sent, for echo
	readLine := func() (string, error) {
		l, err := tp.ReadLine()
		if err == nil {
			history = append(history, l)
		}
		return l, err
	}
	echoed := func() string { return strings.Join(history, " | ") }
	// act answers step with the reply function's line (def when it has
	// none) or action. ok reports a positive reply, on that the session
	// goes on (not after 421, hang or drop).
	act := func(step, def string) (ok, on bool) {
		switch r := f.reply(n, step); r {
		case hang:
			io.Copy(io.Discard, c) // until the client closes
			return false, false
		case drop:
			return false, false
		default:
			if r == "" || r == acceptAndDrop {
				r = def
			}
			tp.PrintfLine("%s", r)
			return r[0] == '2' || r[0] == '3', !strings.HasPrefix(r, "421")
		}
	}
	if ok, _ := act("greeting", "220 fake ESMTP"); !ok {
		return
	}
	for {
		line, err := readLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		if f.echo != "" && verb == f.echo && verb == "RCPT" {
			tp.PrintfLine("550 5.1.1 %s: Recipient address rejected: User unknown (you said: %s)", line[strings.Index(line, ":")+1:], echoed())
			continue
		}
		switch verb {
		case "EHLO":
			ext := []string{"250-fake", "250-8BITMIME"}
			if f.cram != "" {
				ext = append(ext, "250-AUTH CRAM-MD5")
			}
			if f.echo != "" {
				ext = append(ext, "250-AUTH PLAIN LOGIN")
			}
			for _, l := range append(ext, "250 ENHANCEDSTATUSCODES") {
				tp.PrintfLine("%s", l)
			}
		case "AUTH":
			if f.echo != "" {
				f.echoAuth(tp, line, readLine, echoed)
				continue
			}
			f.auth(tp)
		case "MAIL", "RCPT":
			if _, on := act(verb, "250 2.1.0 Ok"); !on {
				return
			}
		case "DATA":
			if f.reply(n, "DATA") == dropMidData {
				tp.PrintfLine("354 go ahead")
				tp.ReadLine()
				return
			}
			ok, on := act("DATA", "354 go ahead")
			if !on {
				return
			}
			if !ok {
				continue
			}
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.messages = append(f.messages, string(data))
			f.mu.Unlock()
			_, on = act("end", "250 2.0.0 queued")
			if !on || f.reply(n, "end") == acceptAndDrop {
				return
			}
		case "RSET", "NOOP":
			tp.PrintfLine("250 2.0.0 Ok")
		case "QUIT":
			tp.PrintfLine("221 2.0.0 Bye")
			return
		default:
			tp.PrintfLine("502 5.5.2 unknown command")
		}
	}
}

// auth checks a CRAM-MD5 exchange against f.cram.
func (f *fakeSMTP) auth(tp *textproto.Conn) {
	user, secret, _ := strings.Cut(f.cram, ":")
	challenge := "<1896.697170952@fake.example>"
	tp.PrintfLine("334 %s", base64.StdEncoding.EncodeToString([]byte(challenge)))
	line, err := tp.ReadLine()
	if err != nil {
		return
	}
	answer, _ := base64.StdEncoding.DecodeString(line)
	gotUser, digest, _ := strings.Cut(string(answer), " ")
	mac := hmac.New(md5.New, []byte(secret))
	mac.Write([]byte(challenge))
	if gotUser == user && digest == hex.EncodeToString(mac.Sum(nil)) {
		tp.PrintfLine("235 2.7.0 Authentication successful")
		return
	}
	tp.PrintfLine("535 5.7.8 Authentication credentials invalid")
}

// echoAuth takes AUTH PLAIN or LOGIN from any client and, when echo is
// "AUTH", refuses it quoting everything the client sent.
func (f *fakeSMTP) echoAuth(tp *textproto.Conn, line string, readLine func() (string, error), echoed func() string) {
	fields := strings.Fields(line)
	if len(fields) >= 2 && strings.EqualFold(fields[1], "LOGIN") {
		tp.PrintfLine("334 VXNlcm5hbWU6")
		if _, err := readLine(); err != nil {
			return
		}
		tp.PrintfLine("334 UGFzc3dvcmQ6")
		if _, err := readLine(); err != nil {
			return
		}
	}
	if f.echo == "AUTH" {
		tp.PrintfLine("535 5.7.8 Authentication failed for %s", echoed())
		return
	}
	tp.PrintfLine("235 2.7.0 Authentication successful")
}
