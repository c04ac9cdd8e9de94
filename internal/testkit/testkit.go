// Package testkit is the support every package's tests share, written once
// (pebble's internal/testutils is the model): a Clock the test moves,
// CheckFor to poll instead of sleeping, CheckErr for the error a table
// wants, FieldDiffs, FirstLineDiff, WriteHex and ReadHex for golden
// values, texts and bytes, FreeAddr, ReadStream of a JetStream stream,
// Items of a list's answer, and a Recorder with which the tests of a helper
// see its checks fail.
//
// It imports none of the product's packages but failure, so that the tests
// inside ledger, holdings and commission (package ledger, not ledger_test)
// may use it without an import cycle. What opens the product's stores lives
// a layer up, for the same reason:
//
//   - testkit/ledgertest opens a ledger for a test and checks its outbox
//     against the event catalog; it imports ledger, so identity's tests may
//     use it but ledger's may not.
//   - testkit/identitytest opens a ledger and an identity store with cheap
//     password hashing, and makes the usual principals (an admin, a user,
//     the service "cyclades" and its resources); it imports identity, so
//     events', api's, the client's, bench's and the command's tests may use
//     it but identity's may not.
//
// Set-up that needs package api stays in api's own helpers (its tests are
// package api, and api imports identity), built on these.
package testkit

import "time"

// TB is what the helpers need of a test. *testing.T, *testing.B,
// *testing.F and *rapid.T all have it.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Cleanup(func())
}

// Patience bounds a wait of a test: long enough for a loaded machine, and
// there only to turn a hang into a failure, never to measure.
const Patience = 2 * time.Minute
