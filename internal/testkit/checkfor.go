package testkit

import "time"

// CheckFor calls fn every interval until it returns nil (nats-server's
// checkFor). It fails the test with fn's last error if fn has not
// returned nil after timeout, and at once if the test has failed meanwhile
// (a worker that failed makes no more progress). The timeout only turns a
// hang into a failure: make it generous, Patience when in doubt.
func CheckFor(tb TB, timeout, interval time.Duration, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if tb.Failed() {
			tb.Fatalf("the test failed while waiting: %v", err)
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %v", timeout, err)
			return
		}
		time.Sleep(interval)
	}
}
