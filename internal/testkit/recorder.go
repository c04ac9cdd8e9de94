package testkit

import (
	"fmt"
	"sync"
)

// Recorder is a TB that records what a helper reports instead of failing
// the test, so that the tests of a helper can see its checks fail. Its
// Fatalf records and returns (it cannot stop the helper's goroutine): a
// helper returns after Fatalf. Cleanup functions run at End. It is safe
// for concurrent use.
type Recorder struct {
	// Failing makes Failed report true from the start, as for a test
	// that has already failed.
	Failing bool

	mu       sync.Mutex
	errors   []string
	fatals   []string
	cleanups []func()
}

func (r *Recorder) Helper() {}

// Errorf records a failure.
func (r *Recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// Fatalf records a fatal failure.
func (r *Recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

// Failed reports whether anything was recorded, or Failing.
func (r *Recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Failing || len(r.errors)+len(r.fatals) > 0
}

// Cleanup records f, to run at End.
func (r *Recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// End runs the cleanup functions as the end of a test does, the last
// registered first, and forgets them.
func (r *Recorder) End() {
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Errors returns the failures recorded by Errorf.
func (r *Recorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

// Fatals returns the failures recorded by Fatalf.
func (r *Recorder) Fatals() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.fatals...)
}

// Cleanups returns how many cleanup functions wait for End.
func (r *Recorder) Cleanups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cleanups)
}
