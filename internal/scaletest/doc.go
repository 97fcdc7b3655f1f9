// Package scaletest measures passreset's delivery at scale on MariaDB and
// on PostgreSQL against resendtest, a fake Resend API that allows, as
// Resend does by default, 2 requests per API key in any sliding second,
// counting the refused ones: several instances sharing one provider
// budget, batches, a rolling restart, recovery after a worker is killed,
// and a provider that answers after the mailer's timeout.
//
// The package holds only tests and benchmarks. They read
// PASSRESET_MYSQL_DSN and PASSRESET_PG_DSN and skip a store without its
// DSN (with CI=true a missing DSN fails the tests). Each creates tables
// of its own (a random prefix) and drops them at the end.
//
//	export PASSRESET_MYSQL_DSN="$(scripts/mariadb.sh start | tail -n 1)"
//	export PASSRESET_PG_DSN="$(scripts/postgres.sh start | tail -n 1)"
//	go test -race ./internal/scaletest/
//	PASSRESET_SCALE_BENCH=1 go test -run '^$' -bench . -benchtime 1x -timeout 60m ./internal/scaletest/
//
// The tests (fast, deterministic, in the default run) prove, on each
// store:
//
//   - a provider that answers after the mailer's timeout causes no
//     duplicate delivery and moves no message aside, however many
//     answers never came: an unknown outcome is retried under the same
//     idempotency key and counts no attempt;
//   - a worker whose send takes longer than its lease keeps its claim
//     (the heartbeat renews it): no other worker can claim the message
//     meanwhile, and it is sent once.
//
// The benchmarks measure the delivery figures in BENCHMARKS.md ("Delivery
// at scale"), each on both stores. They take minutes, so without
// PASSRESET_SCALE_BENCH=1 they skip:
//
//   - BenchmarkThreeInstances: three worker processes drain 300 mails,
//     in batches and one per API call, sharing the budget through the
//     database;
//   - BenchmarkBatchDrain: three worker processes drain 10,000 queued
//     reset requests through the batch endpoint;
//   - BenchmarkRollingRestart: the same drain while each process in turn
//     is stopped gracefully and replaced;
//   - BenchmarkKillRecovery: during the same drain, a worker process
//     holding claims mid-send is killed with SIGKILL; the others send its
//     messages ahead of the backlog.
//
// The worker processes are this test binary run again with
// -test.run=^TestWorkerProcess$ and their settings in environment
// variables. Run alone, TestWorkerProcess does nothing.
package scaletest
