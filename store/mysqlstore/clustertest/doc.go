// Package clustertest proves that passreset stays correct when several app
// instances share a multi-primary MySQL cluster: a 3-node MariaDB Galera
// cluster on loopback, started by the repository's scripts/galera.sh.
//
// The package holds only tests and a benchmark. They read two variables:
//
//	PASSRESET_GALERA_DSNS    the three nodes' DSNs, separated by spaces
//	PASSRESET_GALERA_SCRIPT  the path of scripts/galera.sh (kill and rejoin a node)
//
// and skip without them (with CI=true a missing variable fails them);
// TestJourneyPasswords needs neither (it checks that the app instances'
// password policy accepts the new password of every load journey):
//
//	export PASSRESET_GALERA_DSNS="$(scripts/galera.sh start | tail -n 3 | tr '\n' ' ')"
//	export PASSRESET_GALERA_SCRIPT=$PWD/scripts/galera.sh
//	go test -race ./store/mysqlstore/clustertest/
//	go test -run '^$' -bench Cluster -benchtime 3s ./store/mysqlstore/clustertest/
//	scripts/galera.sh stop
//
// What they prove, each with tables of its own (created through node 1,
// dropped at the end):
//
//   - the core's Store conformance suite passes on one node, and with every
//     call of the suite sent to the next node in turn;
//   - of 100 concurrent rotations of one user's token spread over the three
//     nodes exactly one token stays valid, the same on every node; of 100
//     concurrent completions of one token through Services on different
//     nodes exactly one wins and the others see an invalid token; of
//     concurrent cooldowns for one address on different nodes exactly one
//     starts;
//   - a token issued through one node works through the next one at once,
//     2,000 times in a row, and a RevokeAll through the next node removes
//     it, 1,000 times in a row (with wsrep_sync_wait=3 in the DSNs, which
//     the store requires on Galera);
//   - three app instances, separate processes each serving the HTTP
//     handler on its own node and mailing through a fake Resend API, answer
//     a client that spreads its requests over them without one error, and
//     every email is sent exactly once;
//   - when a node is killed under that load the instances on the other
//     nodes keep answering, the instance on the dead node answers 503, and
//     it recovers by itself when the node rejoins;
//   - outbox workers on all three nodes send every queued message once.
//
// The test TestAppInstance is the app instance itself: the other tests
// start the test binary again with -test.run=^TestAppInstance$ and the
// settings in environment variables. Run alone, it skips.
package clustertest
