package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Login and password-reset attempts are rate limited per username and per
// client address (DESIGN.md §8) by token buckets: a key may spend its
// whole budget at once (the burst), and earns it back evenly over the
// window. A refused attempt is a 429 whose Retry-After says, in whole
// seconds, when the next one would be taken.

// restLimit is the budget of one kind of attempt.
type restLimit struct {
	kind             string
	perUser, perAddr int
	window           time.Duration
}

var (
	// Failed logins: 10 per 5 minutes per username, 50 per address.
	restLoginLimit = restLimit{"login", 10, 50, 5 * time.Minute}
	// Reset requests: 5 per hour per username, 20 per address.
	restResetLimit = restLimit{"reset", 5, 20, time.Hour}
	// Failed reset confirmations (an id unknown or expired): 10 per hour
	// per address (no username: the id is the secret guessed).
	restConfirmLimit = restLimit{"confirm", 0, 10, time.Hour}
)

// limitKey is one bucket an attempt draws on: its key and budget.
type limitKey struct {
	key    string
	burst  int
	window time.Duration
}

// keys are the buckets of an attempt by username from addr.
func (lim restLimit) keys(username, addr string) [2]limitKey {
	return [2]limitKey{
		{lim.kind + "\x00u\x00" + strings.ToLower(strings.TrimSpace(username)), lim.perUser, lim.window},
		{lim.kind + "\x00a\x00" + addr, lim.perAddr, lim.window},
	}
}

// Bounds of a rateLimiter's memory.
const (
	// defaultMaxBuckets caps the buckets held (some 200 bytes each).
	defaultMaxBuckets = 100_000
	// sweepInterval is how often buckets that have refilled are dropped.
	sweepInterval = time.Minute
)

// rateLimiter holds a token bucket per key. A bucket that has refilled is
// the same as none, so buckets are dropped once full: every sweepInterval,
// and whenever the map reaches maxBuckets. If a spray of keys still fills
// it (more than maxBuckets keys spent from within a refill), arbitrary
// buckets go until it is three quarters full: those keys get their budget
// back early, while the address buckets of the sprayer, being spent, are
// as likely as any to stay.
type rateLimiter struct {
	mu         sync.Mutex
	now        func() time.Time
	maxBuckets int
	buckets    map[string]*rate.Limiter
	swept      time.Time
}

func newRateLimiter(now func() time.Time) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	return &rateLimiter{now: now, maxBuckets: defaultMaxBuckets, buckets: make(map[string]*rate.Limiter)}
}

// wait says how long an attempt drawing on keys must wait (0: it may go
// now), spending nothing.
func (l *rateLimiter) wait(keys ...limitKey) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserve(l.now(), false, keys)
}

// take spends one attempt of each of keys and returns 0; or, if one of
// them has none left, spends nothing and returns how long to wait.
func (l *rateLimiter) take(keys ...limitKey) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserve(l.now(), true, keys)
}

// reserve reserves an attempt of each of keys at now and keeps the
// reservations if spend is set and none has to wait; otherwise it cancels
// them all (at now, so that they are restored in full) and returns the
// longest wait. l.mu is held.
func (l *rateLimiter) reserve(now time.Time, spend bool, keys []limitKey) time.Duration {
	var longest time.Duration
	rs := make([]*rate.Reservation, 0, len(keys))
	for _, k := range keys {
		b := l.buckets[k.key]
		if b == nil {
			if !spend {
				continue // a key with no bucket has its whole budget
			}
			b = l.add(now, k)
		}
		r := b.ReserveN(now, 1)
		if !r.OK() { // a budget of 0: never (no limit of ours has one)
			longest = time.Duration(math.MaxInt64)
			continue
		}
		rs = append(rs, r)
		longest = max(longest, r.DelayFrom(now))
	}
	if !spend || longest > 0 {
		for _, r := range rs {
			r.CancelAt(now)
		}
	}
	return longest
}

// add makes the bucket of k, full, first making room if it is time to
// sweep or the map is at its cap. l.mu is held.
func (l *rateLimiter) add(now time.Time, k limitKey) *rate.Limiter {
	if len(l.buckets) >= l.maxBuckets || now.Sub(l.swept) >= sweepInterval {
		l.sweep(now)
	}
	b := rate.NewLimiter(rate.Limit(float64(k.burst)/k.window.Seconds()), k.burst)
	l.buckets[k.key] = b
	return b
}

// sweep drops the buckets that have refilled, then, if the map is still
// at its cap, arbitrary ones down to three quarters of it. l.mu is held.
func (l *rateLimiter) sweep(now time.Time) {
	l.swept = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxBuckets {
		return
	}
	for k := range l.buckets {
		if len(l.buckets) <= l.maxBuckets*3/4 {
			break
		}
		delete(l.buckets, k)
	}
}

// size is the number of buckets held.
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// clientAddress is the address of the client of the call: the host of
// the connection's remote address (the server takes no forwarded-for
// header: it trusts no proxy but a node of its cluster, whose forwarded
// call carries the cluster's key and the client's address: cluster.go
// puts that address in place before the handler runs).
func (c *call) clientAddress() string {
	host, _, err := net.SplitHostPort(c.r.RemoteAddr)
	if err != nil {
		host = c.r.RemoteAddr
	}
	return host
}

// restAddress is the client address an attempt is counted against: the
// clientAddress, and for IPv6 its /64, the block one host is commonly
// given.
func (c *call) restAddress() string {
	host := c.clientAddress()
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return host
}

// restLimited says how long an attempt of lim by username must wait (0:
// it may go), spending nothing.
func (c *call) restLimited(lim restLimit, username string) time.Duration {
	k := lim.keys(username, c.restAddress())
	return c.s.limiter.wait(k[:]...)
}

// restCount spends an attempt of lim by username; it says how long to
// wait, having spent nothing, if there is none left.
func (c *call) restCount(lim restLimit, username string) time.Duration {
	k := lim.keys(username, c.restAddress())
	return c.s.limiter.take(k[:]...)
}

// restAddrKey is the bucket of an attempt of lim from the call's address
// alone (an attempt that names no user).
func (c *call) restAddrKey(lim restLimit) limitKey {
	return limitKey{lim.kind + "\x00a\x00" + c.restAddress(), lim.perAddr, lim.window}
}

// restTooMany is the 429 of an attempt that must wait d, with Retry-After
// in whole seconds, at least 1.
func (c *call) restTooMany(d time.Duration) error {
	secs := max(int64(math.Ceil(d.Seconds())), 1)
	c.w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return newFault(http.StatusTooManyRequests, "too many attempts; try again later")
}
