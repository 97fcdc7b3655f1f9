// Package scaletest measures passreset's delivery at scale on MySQL or
// MariaDB against resendtest, a fake Resend API limited, as Resend is by
// default, to 2 requests a second per API key: several instances sharing
// one provider budget, batches, recovery after a worker is killed, and a
// provider that answers after the mailer's timeout.
//
// The package holds only tests and benchmarks. They read
// PASSRESET_MYSQL_DSN and skip without it (with CI=true a missing DSN
// fails the tests). Each creates tables of its own (a random prefix) and
// drops them at the end.
//
//	export PASSRESET_MYSQL_DSN="$(scripts/mariadb.sh dsn)"
//	go test -race ./store/mysqlstore/scaletest/
//	PASSRESET_SCALE_BENCH=1 go test -run '^$' -bench . -benchtime 1x -timeout 30m ./store/mysqlstore/scaletest/
//
// The tests (fast, deterministic, in the default run) prove:
//
//   - a provider that answers after the mailer's timeout causes no
//     duplicate delivery and moves no message aside, however many
//     answers never came: an unknown outcome is retried under the same
//     idempotency key and counts no attempt;
//   - a worker whose send takes longer than its lease keeps its claim
//     (the heartbeat renews it): no other worker can claim the message
//     meanwhile, and it is sent once.
//
// The benchmarks measure the figures of issue #14 (see "Delivery at
// scale" in BENCHMARKS.md). They take minutes, so without
// PASSRESET_SCALE_BENCH=1 they skip:
//
//   - BenchmarkThreeInstances: three worker processes drain 300 mails,
//     one per API call, sharing the budget through the database;
//   - BenchmarkBatchDrain: three worker processes drain 10,000 queued
//     reset requests through the batch endpoint;
//   - BenchmarkKillRecovery: a worker process holding claims is killed
//     with SIGKILL; another sends its messages.
//
// The worker processes are this test binary run again with
// -test.run=^TestWorkerProcess$ and their settings in environment
// variables. Run alone, TestWorkerProcess does nothing.
package scaletest
