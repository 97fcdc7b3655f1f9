// Package upgradetest runs the previous and the current program of
// passreset's SQL stores side by side on one database, as a fleet does
// during a rolling upgrade and a rollback.
//
// The previous program is this source built with the passreset_oldschema
// tag, which withholds the newest migration of each store: it believes
// its schema is one version older. So it proves what the schema and the
// version rules allow (an expand-only migration keeps the older schema
// version's program running; queued envelopes survive), on the code of
// today. The old program's steps on the old schema (migrate, request)
// touch only what the newest migration does not change.
package upgradetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passreset/passreset/internal/opstest"
	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/passreset/passreset/store/pgstore"
)

// build builds fleetprog into dir with the build tags given, and returns
// the binary's path.
func build(t *testing.T, dir, name string, tags ...string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, "./fleetprog")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

// programs are the two versions of the application.
type programs struct{ old, new string }

func buildBoth(t *testing.T) programs {
	dir := t.TempDir()
	return programs{old: build(t, dir, "old", "passreset_oldschema"), new: build(t, dir, "new")}
}

// fleet runs one step of a program against the test's tables.
type fleet struct {
	t       *testing.T
	env     []string
	dialect string
	prefix  string
}

// run runs bin with the step and returns its standard output; the step
// must exit with code want.
func (f fleet) run(bin string, want int, step ...string) string {
	f.t.Helper()
	cmd := exec.Command(bin, append([]string{"-dialect", f.dialect, "-prefix", f.prefix}, step...)...)
	cmd.Env = append(os.Environ(), f.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		f.t.Fatal(err)
	}
	if code != want {
		f.t.Fatalf("%s %s: exit %d, want %d\nstdout: %s\nstderr: %s", filepath.Base(bin), strings.Join(step, " "), code, want, out.String(), errOut.String())
	}
	return out.String() + errOut.String()
}

// token drains the outbox with bin and returns the token mailed to addr.
func (f fleet) token(bin, addr string) string {
	f.t.Helper()
	out := f.run(bin, 0, "drain")
	for line := range strings.Lines(out) {
		if fields := strings.Fields(line); len(fields) == 3 && fields[0] == "TOKEN" && fields[1] == addr && fields[2] != "" {
			return fields[2]
		}
	}
	f.t.Fatalf("%s drain mailed nothing to %s:\n%s", filepath.Base(bin), addr, out)
	return ""
}

// cycle is a whole reset by bin: request, send, complete.
func (f fleet) cycle(bin, addr string) {
	f.t.Helper()
	f.run(bin, 0, "request", addr)
	tok := f.token(bin, addr)
	if out := f.run(bin, 0, "complete", tok); !strings.Contains(out, "SET "+addr) {
		f.t.Fatalf("%s complete for %s set no password:\n%s", filepath.Base(bin), addr, out)
	}
}

// upgrade is the rolling upgrade and the rollback, on one database.
func upgrade(t *testing.T, p programs, f fleet, newest int) {
	// The previous version runs alone and queues a request.
	f.run(p.old, 0, "migrate")
	if got := f.run(p.old, 0, "version"); got != fmt.Sprintf("%d %d\n", newest-1, newest-1) {
		t.Fatalf("old version: %q", got)
	}
	f.run(p.old, 0, "request", "queued@example.com")
	// The new program does not start on the old schema, and changes
	// nothing: it names the command to run.
	if out := f.run(p.new, 3, "version"); !strings.Contains(out, "passreset schema migrate") {
		t.Fatalf("new program on the old schema: %s", out)
	}
	// Deploy: migrate first.
	f.run(p.new, 0, "migrate")
	if got := f.run(p.new, 0, "version"); got != fmt.Sprintf("%d %d\n", newest, newest) {
		t.Fatalf("new version after migrate: %q", got)
	}
	// The request queued before the migration is sent by the new
	// program, and the old one completes it: no queued mail is lost.
	tok := f.token(p.new, "queued@example.com")
	f.run(p.old, 0, "complete", tok)
	// Both versions serve side by side on the expanded schema, each
	// finishing what the other queued.
	if got := f.run(p.old, 0, "version"); got != fmt.Sprintf("%d %d\n", newest, newest-1) {
		t.Fatalf("old version on the new schema: %q", got)
	}
	f.cycle(p.old, "old@example.com")
	f.cycle(p.new, "new@example.com")
	f.run(p.old, 0, "request", "cross@example.com")
	f.run(p.old, 0, "complete", f.token(p.new, "cross@example.com"))
	// Roll back: only the old program again, no edit of the schema; its
	// Migrate changes nothing.
	f.run(p.old, 0, "migrate")
	f.cycle(p.old, "rollback@example.com")
	if got := f.run(p.new, 0, "version"); got != fmt.Sprintf("%d %d\n", newest, newest) {
		t.Fatalf("version after the rollback: %q", got)
	}
}

func TestRollingUpgrade(t *testing.T) {
	p := buildBoth(t)
	t.Run("MariaDB", func(t *testing.T) {
		_, dsn, prefix := opstest.MariaDB(t)
		upgrade(t, p, fleet{t: t, env: []string{"PASSRESET_MYSQL_DSN=" + dsn}, dialect: "mysql", prefix: prefix}, mysqlstore.SchemaVersion)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		_, dsn, prefix := opstest.PostgreSQL(t)
		upgrade(t, p, fleet{t: t, env: []string{"PASSRESET_PG_DSN=" + dsn}, dialect: "postgres", prefix: prefix}, pgstore.SchemaVersion)
	})
}
