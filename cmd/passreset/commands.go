package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// print writes v as JSON with --json, and calls human otherwise.
func (e *env) print(v any, human func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(e.out)
	return nil
}

// withStore opens the store, runs f and closes it.
func (e *env) withStore(f func(s *store) error) error {
	s, err := openStore(e.getenv)
	if err != nil {
		return err
	}
	defer s.db.Close()
	return f(s)
}

type keyCmd struct{}

// Run prints a new sealing key in the form OUTBOX_KEY reads.
func (keyCmd) Run(e *env) error {
	k := make([]byte, 32)
	rand.Read(k)
	s := base64.StdEncoding.EncodeToString(k)
	return e.print(struct {
		Variable string `json:"variable"`
		Key      string `json:"key"`
	}{"OUTBOX_KEY", s}, func(w io.Writer) { fmt.Fprintln(w, s) })
}

type schemaCmd struct {
	Show    schemaShowCmd    `cmd:"" help:"Print the SQL schema this build applies."`
	Version schemaVersionCmd `cmd:"" help:"Show the schema version in the database and the one this build needs (exit 3 if they differ)."`
	Migrate schemaMigrateCmd `cmd:"" help:"Create or upgrade the tables to this build's version."`
	Files   schemaFilesCmd   `cmd:"" help:"Write the migration files for goose or golang-migrate (any table prefix)."`
}

// dialect returns flag, or the dialect whose DSN is set.
func (e *env) dialect(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	d, err := dialect(e.getenv)
	if err != nil {
		return "", usageError{fmt.Errorf("%w, or --dialect", err)}
	}
	return d, nil
}

type schemaShowCmd struct {
	Dialect string `enum:",mysql,postgres" default:"" help:"mysql or postgres (default: the one whose DSN is set)."`
}

// Run prints the schema.
func (c schemaShowCmd) Run(e *env) error {
	d, err := e.dialect(c.Dialect)
	if err != nil {
		return err
	}
	sql, v, err := schemaSQL(d, e.getenv("PASSRESET_TABLE_PREFIX"))
	if err != nil {
		return usageError{err}
	}
	return e.print(struct {
		Dialect string `json:"dialect"`
		Version int    `json:"version"`
		SQL     string `json:"sql"`
	}{d, v, sql}, func(w io.Writer) { fmt.Fprint(w, sql) })
}

type schemaVersionCmd struct{}

// schemaState is what schema version and migrate print.
type schemaState struct {
	Installed int `json:"installed"`
	Want      int `json:"want"`
	// Current says that this build runs on the installed schema: it is
	// at Want, or newer with only expand-only migrations after Want.
	Current bool   `json:"current"`
	Problem string `json:"problem,omitempty"`
}

func (s schemaState) human(w io.Writer) {
	fmt.Fprintf(w, "schema version %d, this build needs %d (and runs on newer ones until a contracting migration)", s.Installed, s.Want)
	switch {
	case !s.Current:
		fmt.Fprintf(w, ": NOT current: %s\n", s.Problem)
	case s.Installed > s.Want:
		fmt.Fprintln(w, ": current (newer, every later migration expand-only)")
	default:
		fmt.Fprintln(w, ": current")
	}
}

func readSchema(ctx context.Context, s *store) (schemaState, error) {
	v, err := s.version(ctx)
	if err != nil {
		return schemaState{}, fmt.Errorf("reading the schema version: %w", err)
	}
	st := schemaState{Installed: v, Want: s.want, Current: true}
	if err := s.check(ctx); err != nil {
		st.Current, st.Problem = false, err.Error()
	}
	return st, nil
}

// Run prints the schema versions.
func (schemaVersionCmd) Run(e *env) error {
	return e.withStore(func(s *store) error {
		st, err := readSchema(e.ctx, s)
		if err != nil {
			return err
		}
		if err := e.print(st, st.human); err != nil {
			return err
		}
		if !st.Current {
			return problemError{"schema not current"}
		}
		return nil
	})
}

type schemaMigrateCmd struct{}

// Run migrates.
func (schemaMigrateCmd) Run(e *env) error {
	return e.withStore(func(s *store) error {
		if err := s.migrate(e.ctx); err != nil {
			return err
		}
		st, err := readSchema(e.ctx, s)
		if err != nil {
			return err
		}
		return e.print(st, st.human)
	})
}

type schemaFilesCmd struct {
	Tool    string `required:"" enum:"goose,golang-migrate" help:"goose or golang-migrate."`
	Dir     string `required:"" type:"path" help:"The directory to write the files into (made if missing)."`
	Prefix  string `help:"The table prefix (default: PASSRESET_TABLE_PREFIX, else passreset_)."`
	Dialect string `enum:",mysql,postgres" default:"" help:"mysql or postgres (default: the one whose DSN is set)."`
}

// Run writes the migration files.
func (c schemaFilesCmd) Run(e *env) error {
	d, err := e.dialect(c.Dialect)
	if err != nil {
		return err
	}
	prefix := c.Prefix
	if prefix == "" {
		prefix = e.getenv("PASSRESET_TABLE_PREFIX")
	}
	files, err := migrationFiles(d, c.Tool, prefix)
	if err != nil {
		return usageError{err}
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(files))
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(c.Dir, name), []byte(files[name]), 0o644); err != nil {
			return err
		}
	}
	return e.print(struct {
		Dialect string   `json:"dialect"`
		Tool    string   `json:"tool"`
		Dir     string   `json:"dir"`
		Files   []string `json:"files"`
	}{d, c.Tool, c.Dir, names}, func(w io.Writer) {
		for _, name := range names {
			fmt.Fprintln(w, filepath.Join(c.Dir, name))
		}
	})
}

type outboxCmd struct {
	Status outboxStatusCmd `cmd:"" help:"Pending, dead, oldest age and provider budget, for every instance together."`
	Dead   outboxDeadCmd   `cmd:"" help:"List dead messages and why they failed."`
	Revive outboxReviveCmd `cmd:"" help:"Make dead messages pending again: the IDs given, or --all that match."`
	Purge  outboxPurgeCmd  `cmd:"" help:"Delete dead messages for good."`
}

type outboxStatusCmd struct {
	MaxAge time.Duration `name:"max-age" help:"Exit 3 when the oldest pending message has waited longer than this."`
}

// status is what outbox status prints.
type status struct {
	Pending          int        `json:"pending"`
	Dead             int        `json:"dead"`
	Oldest           *time.Time `json:"oldest,omitempty"`
	OldestAgeSeconds float64    `json:"oldest_age_seconds"`
	// BudgetNextCall is when the shared provider budget lets the next
	// call start (the budget's tat); null if unknown or never used.
	BudgetNextCall *time.Time `json:"budget_next_call,omitempty"`
	BudgetPaused   bool       `json:"budget_paused"`
	BudgetKnown    bool       `json:"budget_known"`
}

// Run prints the outbox's figures.
func (c outboxStatusCmd) Run(e *env) error {
	return e.withStore(func(s *store) error {
		ob, err := outbox.New(s.outbox, outbox.Options{MaxPending: countLimit}) // no key: reads only
		if err != nil {
			return err
		}
		r, err := ob.Report(e.ctx)
		if err != nil {
			return err
		}
		st := status{Pending: r.Pending, Dead: r.Dead, OldestAgeSeconds: r.OldestAge.Seconds()}
		if !r.Oldest.IsZero() {
			st.Oldest = &r.Oldest
		}
		tat, err := outbox.ReadBudget(e.ctx, s.outbox, "")
		switch {
		case errors.Is(err, outbox.ErrNoBudgetReader):
		case err != nil:
			return err
		default:
			st.BudgetKnown = true
			if !tat.IsZero() {
				st.BudgetNextCall = &tat
				st.BudgetPaused = time.Until(tat) > time.Second
			}
		}
		err = e.print(st, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "pending\t%s\n", atLeast(st.Pending))
			fmt.Fprintf(tw, "dead\t%s\n", atLeast(st.Dead))
			if st.Oldest != nil {
				fmt.Fprintf(tw, "oldest pending\t%s (waiting %s)\n", st.Oldest.Format(time.RFC3339), r.OldestAge.Round(time.Second))
			} else {
				fmt.Fprintf(tw, "oldest pending\t-\n")
			}
			switch {
			case !st.BudgetKnown:
				fmt.Fprintf(tw, "provider budget\tunknown (this store cannot read it without reserving)\n")
			case st.BudgetPaused:
				fmt.Fprintf(tw, "provider budget\tPAUSED until %s\n", st.BudgetNextCall.Format(time.RFC3339))
			default:
				fmt.Fprintf(tw, "provider budget\tnot paused\n")
			}
			tw.Flush()
		})
		if err != nil {
			return err
		}
		if c.MaxAge > 0 && r.OldestAge > c.MaxAge {
			return problemError{"oldest pending message is older than --max-age"}
		}
		return nil
	})
}

// countLimit is what outbox status counts up to (the outbox's default
// MaxPending): a count equal to it means "that many or more".
const countLimit = 100_000

// atLeast prints a count of outbox status.
func atLeast(n int) string {
	if n >= countLimit {
		return fmt.Sprintf("%d or more", n)
	}
	return fmt.Sprint(n)
}

type outboxDeadCmd struct {
	Limit  int  `default:"100" help:"List at most this many, oldest first."`
	Reveal bool `help:"Show the addresses each message was for (needs OUTBOX_KEY)."`
}

// deadMessage is one line of outbox dead.
type deadMessage struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	CreatedAt  time.Time `json:"created_at"`
	Attempts   int       `json:"attempts"`
	Reason     string    `json:"reason"`
	Recipients []string  `json:"recipients,omitempty"`
}

// Run lists dead envelopes.
func (c outboxDeadCmd) Run(e *env) error {
	var keys []outbox.SealKey
	if c.Reveal {
		var err error
		if keys, err = sealKeys(e.getenv); err != nil {
			return err
		}
	}
	return e.withStore(func(s *store) error {
		envs, err := s.outbox.Dead(e.ctx, c.Limit)
		if err != nil {
			return err
		}
		list := make([]deadMessage, 0, len(envs))
		for _, en := range envs {
			d := deadMessage{ID: en.ID, Kind: en.Kind, CreatedAt: en.CreatedAt, Attempts: en.Attempts, Reason: en.LastError}
			if c.Reveal {
				if d.Recipients, err = outbox.Recipients(keys, en); err != nil {
					d.Recipients = []string{"(cannot open: " + err.Error() + ")"}
				}
			}
			list = append(list, d)
		}
		return e.print(list, func(w io.Writer) {
			if len(list) == 0 {
				fmt.Fprintln(w, "no dead messages")
				return
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			head := "ID\tKIND\tCREATED\tATTEMPTS\tREASON"
			if c.Reveal {
				head += "\tRECIPIENTS"
			}
			fmt.Fprintln(tw, head)
			for _, d := range list {
				line := fmt.Sprintf("%s\t%s\t%s\t%d\t%s", d.ID, d.Kind, d.CreatedAt.Format(time.RFC3339), d.Attempts, oneLine(d.Reason))
				if c.Reveal {
					line += "\t" + strings.Join(d.Recipients, ", ")
				}
				fmt.Fprintln(tw, line)
			}
			tw.Flush()
		})
	})
}

// oneLine keeps a reason on one line of a table.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

type outboxReviveCmd struct {
	IDs    []string `arg:"" optional:"" name:"id" help:"IDs of dead messages (from outbox dead)."`
	All    bool     `help:"Revive every dead message that matches --kind and --reason (looking at the oldest 10,000 dead messages at a time)."`
	Kind   string   `help:"With --all: only this kind (request, message, batch)."`
	Reason string   `help:"With --all: only those whose reason contains this text."`
}

// Run revives dead envelopes.
func (c outboxReviveCmd) Run(e *env) error {
	if c.All == (len(c.IDs) > 0) {
		return usageError{errors.New("outbox revive: give IDs, or --all (with --kind or --reason to narrow it)")}
	}
	if !c.All && (c.Kind != "" || c.Reason != "") {
		return usageError{errors.New("outbox revive: --kind and --reason go with --all")}
	}
	return e.withStore(func(s *store) error {
		ids := c.IDs
		if c.All {
			ids = nil
			for {
				// Revived envelopes leave the dead list, so each round
				// reads the next ones.
				envs, err := s.outbox.Dead(e.ctx, reviveScan)
				if err != nil {
					return err
				}
				var round []string
				for _, en := range envs {
					if (c.Kind == "" || en.Kind == c.Kind) && strings.Contains(en.LastError, c.Reason) && !contains(ids, en.ID) {
						round = append(round, en.ID)
					}
				}
				if err := reviveAll(e.ctx, s, round); err != nil {
					return err
				}
				ids = append(ids, round...)
				if len(round) == 0 || len(envs) < reviveScan {
					break
				}
			}
		} else if err := reviveAll(e.ctx, s, ids); err != nil {
			return err
		}
		return e.print(struct {
			Revived []string `json:"revived"`
		}{append([]string{}, ids...)}, func(w io.Writer) {
			fmt.Fprintf(w, "revived %d dead message(s)\n", len(ids))
			for _, id := range ids {
				fmt.Fprintln(w, id)
			}
		})
	})
}

// reviveScan is how many dead envelopes revive --all reads at a time.
const reviveScan = 10_000

func reviveAll(ctx context.Context, s *store, ids []string) error {
	for _, id := range ids {
		if err := s.outbox.Revive(ctx, id, time.Now().UTC()); err != nil {
			if errors.Is(err, reset.ErrNotFound) {
				return notFoundError{fmt.Errorf("no dead message has ID %q", id)}
			}
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type outboxPurgeCmd struct {
	OlderThan time.Duration `name:"older-than" help:"Only those queued longer ago than this (default: every dead message)."`
}

// Run deletes dead envelopes.
func (c outboxPurgeCmd) Run(e *env) error {
	return e.withStore(func(s *store) error {
		before := time.Now().UTC().Add(-c.OlderThan)
		if c.OlderThan == 0 {
			before = before.Add(time.Second) // includes those queued this instant
		}
		total := 0
		for {
			n, err := s.outbox.PruneDead(e.ctx, before, 1000)
			if err != nil {
				return err
			}
			total += n
			if n == 0 {
				break
			}
		}
		return e.print(struct {
			Purged int `json:"purged"`
		}{total}, func(w io.Writer) { fmt.Fprintf(w, "purged %d dead message(s)\n", total) })
	})
}

//go:embed testmail.txt
var testMail string

type sendCmd struct {
	To string `arg:"" help:"Address to send the test email to."`
}

// Run sends one test email.
func (c sendCmd) Run(e *env) error {
	m, closeMailer, err := newMailer(e.getenv)
	if err != nil {
		return err
	}
	defer closeMailer()
	subject, text, _ := strings.Cut(testMail, "\n")
	msg := reset.Message{ID: "test-" + rand.Text()[:16], Kind: "test", To: c.To, Subject: subject, Text: strings.TrimLeft(text, "\n")}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if err := m.Send(ctx, msg); err != nil {
		return fmt.Errorf("send-test: %w", err)
	}
	return e.print(struct {
		MessageID string `json:"message_id"`
		Sent      bool   `json:"sent"`
	}{msg.ID, true}, func(w io.Writer) { fmt.Fprintf(w, "sent test email %s\n", msg.ID) })
}

type checkCmd struct{}

// checkResult is one line of check.
type checkResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Run checks the configuration.
func (checkCmd) Run(e *env) error {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	var results []checkResult
	add := func(name string, err error, ok string) {
		r := checkResult{Name: name, OK: err == nil, Detail: ok}
		if err != nil {
			r.Detail = err.Error()
		}
		results = append(results, r)
	}

	s, err := openStore(e.getenv)
	if err != nil {
		add("store", err, "")
	} else {
		defer s.db.Close()
		if err := s.db.PingContext(ctx); err != nil {
			add("store", err, "")
		} else {
			add("store", nil, "reachable")
			st, err := readSchema(ctx, s)
			switch {
			case err != nil:
				add("schema", err, "")
			case !st.Current:
				add("schema", errors.New(st.Problem), "")
			default:
				add("schema", nil, fmt.Sprintf("version %d, current", st.Installed))
			}
		}
	}
	_, err = sealKeys(e.getenv)
	add("sealing key", err, "OUTBOX_KEY is 32 bytes")
	detail, err := checkMailer(ctx, e.getenv)
	add("mailer", err, detail)
	detail, err = checkLink(ctx, e.getenv)
	add("reset link base", err, detail)

	ok := true
	for _, r := range results {
		ok = ok && r.OK
	}
	err = e.print(struct {
		OK     bool          `json:"ok"`
		Checks []checkResult `json:"checks"`
	}{ok, results}, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range results {
			mark := "ok"
			if !r.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, r.Name, oneLine(r.Detail))
		}
		tw.Flush()
	})
	if err != nil {
		return err
	}
	if !ok {
		return problemError{"check failed"}
	}
	return nil
}

// checkMailer builds the configured mailer and checks what can be checked
// without sending: the SMTP server answers on its port; the Resend key
// has a Resend key's form and the API's host answers.
func checkMailer(ctx context.Context, getenv func(string) string) (string, error) {
	_, closeMailer, err := newMailer(getenv)
	if err != nil {
		return "", err
	}
	closeMailer()
	var hostport, what string
	if raw := getenv("SMTP_URL"); raw != "" {
		u, _ := url.Parse(raw) // newMailer parsed it
		port := u.Port()
		if port == "" {
			port = "587"
			if u.Scheme == "smtps" {
				port = "465"
			} else if u.Scheme == "smtp+plain" {
				port = "25"
			}
		}
		hostport, what = net.JoinHostPort(u.Hostname(), port), "SMTP server"
	} else {
		if !strings.HasPrefix(getenv("RESEND_API_KEY"), "re_") {
			return "", errors.New(`RESEND_API_KEY does not look like a Resend API key (they start with "re_")`)
		}
		base := getenv("RESEND_BASE_URL")
		if base == "" {
			base = "https://api.resend.com"
		}
		u, err := url.Parse(base)
		if err != nil {
			return "", fmt.Errorf("RESEND_BASE_URL: %w", err)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80"}[u.Scheme]
			if port == "" {
				port = "443"
			}
		}
		hostport, what = net.JoinHostPort(u.Hostname(), port), "Resend API"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return "", fmt.Errorf("%s unreachable: %w", what, err)
	}
	conn.Close()
	return what + " at " + hostport + " answers; credentials plausible", nil
}

// checkLink fetches the reset page at the link base: it must answer, and
// not with 404 (the handler is not mounted there) or a server error.
func checkLink(ctx context.Context, getenv func(string) string) (string, error) {
	link, err := resetURL(getenv)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", link, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s unreachable: %w", link, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
		return "", fmt.Errorf("%s answered %s: is the handler mounted there?", link, resp.Status)
	}
	return fmt.Sprintf("%s answers %s", link, resp.Status), nil
}
