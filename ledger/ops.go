package ledger

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

// do queues op to the writer and waits until its batch is durable. Once
// queued, the call is waited for even if ctx ends, so that an answer is
// never given for a call whose fate is unknown.
func (l *Ledger) do(ctx context.Context, o op) error {
	select {
	case <-l.quit:
		return ErrClosed
	default:
	}
	r := requests.Get().(*request)
	r.op = o
	// A select on one channel is the cheaper (the queue has room but under
	// overload); on three, each locked and waited on, it was a few per
	// cent of the engine's CPU at 512 callers.
	select {
	case l.reqs <- r:
	default:
		select {
		case l.reqs <- r:
		case <-ctx.Done():
			r.release()
			return ctx.Err()
		case <-l.quit:
			r.release()
			return ErrClosed
		}
	}
	// The writer answers every request queued before l.quit closed: it
	// drains the queue when it sees it closed. So unless it is closed now,
	// r is answered, and r.done alone is waited on (not l.done too, a
	// channel all callers would queue on).
	select {
	case <-l.quit:
	default:
		<-r.done
		return r.answered()
	}
	select {
	case <-r.done:
		return r.answered()
	case <-l.done:
		// The writer stopped; it drained the queue first, unless this
		// request slipped in after the drain, and then it was never
		// applied (nor is r reused: it may be in the queue still).
		select {
		case <-r.done:
			return r.answered()
		default:
			return ErrClosed
		}
	}
}

// answered returns the answer of a request the writer answered, and the
// request for reuse: the writer no longer refers to it.
func (r *request) answered() error {
	err := r.err
	r.release()
	return err
}

// release returns a request that is not queued (or no longer) for reuse.
func (r *request) release() {
	r.op, r.err = nil, nil
	requests.Put(r)
}

// ExpireDue rejects, with reason EXPIRED, every pending commission whose
// deadline is not after the ledger's clock. The writer does this by itself
// when a deadline passes; tests with their own clock call it.
func (l *Ledger) ExpireDue(ctx context.Context) error {
	return l.do(ctx, &expireOp{})
}

// notPending is ErrNotFound for serial.
func notPending(serial uint64) error {
	return failure.Mark(ErrNotFound, "no pending commission %d", serial)
}

// invalid is the refusal of a malformed request.
func invalid(format string, args ...any) error {
	return failure.Errorf(failure.Invalid, format, args...)
}

// checkKey is holdings' key validation: a *holdings.InvalidError, of
// code failure.Invalid.
func checkKey(k holdings.Key) error { return k.Validate() }

// HoldingSetting is one entry of SetHoldings.
type HoldingSetting struct {
	Key   holdings.Key
	Limit int64
}

// SetHoldings creates the holdings that are missing with zero usage and sets
// the limit of every one named, keeping its usage. A later entry of the same
// key wins. A limit may be below the current usage (new imports then fail);
// a negative limit is ErrInvalid. All or nothing.
func (l *Ledger) SetHoldings(ctx context.Context, settings []HoldingSetting) error {
	for _, s := range settings {
		if err := checkKey(s.Key); err != nil {
			return err
		}
		if s.Limit < 0 {
			return invalid("limit of %s is negative", s.Key)
		}
	}
	return l.do(ctx, &setHoldingsOp{settings: settings})
}

type setHoldingsOp struct{ settings []HoldingSetting }

func (o *setHoldingsOp) apply(b *batch) error {
	hs := make([]EventHolding, 0, len(o.settings))
	pos := make(map[holdings.Key]int, len(o.settings))
	for _, s := range o.settings {
		v, _ := b.get(s.Key)
		v.Limit = s.Limit
		b.putHolding(s.Key, v)
		if i, ok := pos[s.Key]; ok {
			hs[i].After = v
			continue
		}
		pos[s.Key] = len(hs)
		hs = append(hs, EventHolding{Key: s.Key, After: v})
	}
	b.recordHoldings(callSetHoldings, hs)
	b.emitted(chunks(len(hs)))
	return nil
}

// MaxEventHoldings caps the holdings of one holding.changed or
// holding.deleted event: a larger change is reported as several events, so
// that none outgrows a NATS message (1 MiB by default; a holding renders to
// about 200 bytes of JSON).
const MaxEventHoldings = 1000

// DeleteHoldings removes holdings. It is refused with ErrHoldingInUse, and
// nothing is removed, while a pending commission touches any of them. Keys
// that name no holding are ignored.
func (l *Ledger) DeleteHoldings(ctx context.Context, keys []holdings.Key) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	return l.do(ctx, &deleteHoldingsOp{keys: keys})
}

type deleteHoldingsOp struct{ keys []holdings.Key }

func (o *deleteHoldingsOp) apply(b *batch) error {
	want := make(map[holdings.Key]bool, len(o.keys))
	for _, k := range o.keys {
		want[k] = true
	}
	var busy error
	b.eachPending(func(c *commission.Commission) bool {
		for _, p := range c.Provisions {
			if want[p.Key] {
				busy = failure.Mark(ErrHoldingInUse, "holding %s has pending commissions (serial %d)", p.Key, c.Serial)
				return false
			}
		}
		return true
	})
	if busy != nil {
		return busy
	}
	var hs []EventHolding
	for _, k := range o.keys {
		v, ok := b.get(k)
		if !ok {
			continue
		}
		b.deleteHolding(k)
		hs = append(hs, EventHolding{Key: k, After: v})
	}
	if len(hs) > 0 {
		b.recordHoldings(callDeleteHoldings, hs)
		b.emitted(chunks(len(hs)))
	}
	return nil
}

// MaxTTL bounds the ttl of a commission, and Options.DefaultTTL: ten years
// (of 366 days). The API refuses a longer ttl by this same number.
const MaxTTL = 10 * 366 * 24 * time.Hour

// IssueRequest is a commission to issue.
type IssueRequest struct {
	Client     string // the issuing service (clientkey); required
	Name       string
	Force      bool // waive the capacity check of imports (never NoQuantity)
	AutoAccept bool // issue and accept in one step
	Provisions []holdings.Provision
	// TTL, when positive, is how long the commission may stay pending before
	// the ledger rejects it with reason EXPIRED; at most MaxTTL. Zero takes
	// Options.DefaultTTL.
	TTL time.Duration
	// IdempotencyKey, when set, makes a retry of the same request return the
	// first answer instead of issuing again.
	IdempotencyKey string
}

// IssueResult is the answer to an issue.
type IssueResult struct {
	Serial   uint64
	Accepted bool // issued with AutoAccept
	Replayed bool // answered from the idempotency record of an earlier call
}

// Issue issues a commission all or nothing: provisions of the same holding
// are merged, then checked in order. Failures are *holdings.NoHoldingError,
// *holdings.NoCapacityError, *holdings.NoQuantityError, holdings.ErrOverflow,
// failure.Invalid or ErrIdempotencyConflict; on any of them nothing changes.
func (l *Ledger) Issue(ctx context.Context, req IssueRequest) (IssueResult, error) {
	defer since(l.m.issueSeconds, time.Now())
	o, err := newIssueOp(req)
	if err != nil {
		l.m.count(iInvalid, len(req.Provisions))
		return IssueResult{}, err
	}
	err = l.do(ctx, o)
	return o.res, err
}

// newIssueOp checks and merges an issue request.
func newIssueOp(req IssueRequest) (*issueOp, error) {
	if req.Client == "" {
		return nil, invalid("client must not be empty")
	}
	if req.TTL < 0 {
		return nil, invalid("ttl must not be negative")
	}
	if req.TTL > MaxTTL {
		return nil, invalid("ttl must be at most %v (ten years)", MaxTTL)
	}
	if !utf8.ValidString(req.Name) || !utf8.ValidString(req.Client) || !utf8.ValidString(req.IdempotencyKey) {
		return nil, invalid("client, name and idempotency key must be valid UTF-8")
	}
	// At most holdings.MaxProvisions (log keys number them with 16 bits),
	// each with a valid key.
	if err := holdings.ValidateProvisions(req.Provisions); err != nil {
		return nil, err
	}
	merged, err := commission.Merge(req.Provisions)
	if err != nil {
		return nil, err
	}
	o := &issueOp{req: req, merged: merged}
	if req.IdempotencyKey != "" {
		o.hash = requestHash(&req)
	}
	return o, nil
}

// requestHash identifies an issue request for idempotency: the same key with
// another hash is a conflict.
func requestHash(r *IssueRequest) [32]byte {
	b := make([]byte, 0, 64+32*len(r.Provisions))
	b = appendString(b, r.Name)
	var flags byte
	if r.Force {
		flags |= 1
	}
	if r.AutoAccept {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(r.TTL))
	b = appendUvarint(b, uint64(len(r.Provisions)))
	for _, p := range r.Provisions {
		b = appendKeyParts(b, p.Key)
		b = appendVarint(b, p.Quantity)
	}
	return sha256.Sum256(b)
}

type issueOp struct {
	req    IssueRequest
	merged []holdings.Provision
	hash   [32]byte
	res    IssueResult
}

func (o *issueOp) apply(b *batch) error {
	var ikey string
	if o.req.IdempotencyKey != "" {
		ikey = string(idemKey(nil, o.req.Client, o.req.IdempotencyKey))
		if r, ok := b.idemRecord(ikey); ok {
			if r.Hash != o.hash {
				return ErrIdempotencyConflict
			}
			o.res = IssueResult{Serial: r.Serial, Accepted: r.Accepted, Replayed: true}
			return nil
		}
	}
	after, err := commission.Issue(b.get, o.merged, o.req.Force)
	if err != nil {
		if i := refusal(err); i >= 0 {
			b.l.m.count(i, len(o.merged))
		}
		return err
	}
	var final []holdings.Value
	if o.req.AutoAccept {
		final = make([]holdings.Value, len(after))
		for i, p := range o.merged {
			if final[i], err = after[i].Accept(p.Quantity); err != nil {
				if i := refusal(err); i >= 0 {
					b.l.m.count(i, len(o.merged))
				}
				return err
			}
		}
	}

	b.ctr.Serial++
	c := &commission.Commission{
		Serial:     b.ctr.Serial,
		Client:     o.req.Client,
		Name:       o.req.Name,
		IssueTime:  b.now,
		Provisions: o.merged,
	}
	ttl := o.req.TTL
	if ttl == 0 {
		ttl = b.l.opts.DefaultTTL
	}
	if ttl > 0 && !o.req.AutoAccept {
		c.Deadline = b.now.Add(ttl)
	}
	if o.req.AutoAccept {
		for i, p := range o.merged {
			b.updateHolding(p.Key, final[i])
		}
		b.logTime()
		b.emitted(2) // issued, accepted
		b.l.m.count(iAccepted, len(o.merged))
	} else {
		for i, p := range o.merged {
			b.updateHolding(p.Key, after[i])
		}
		b.addCommission(c)
		b.emitted(1)
	}
	o.res = IssueResult{Serial: c.Serial, Accepted: o.req.AutoAccept}
	b.l.m.count(iIssued, len(o.merged))
	var idem idemRecord
	if ikey != "" {
		idem = idemRecord{Created: b.now, Hash: o.hash, Serial: c.Serial, Accepted: o.req.AutoAccept}
		b.idem[ikey] = idem
	}
	b.recordIssue(c, after, final, ikey, &idem)
	return nil
}

func commissionEvent(typ string, c *commission.Commission, after []holdings.Value, reason string) *Event {
	e := &Event{Type: typ, Serial: c.Serial, Client: c.Client, Name: c.Name, Reason: reason,
		IssueTime: c.IssueTime, Holdings: make([]EventHolding, len(c.Provisions))}
	for i, p := range c.Provisions {
		e.Holdings[i] = EventHolding{Key: p.Key, Quantity: p.Quantity, After: after[i]}
	}
	return e
}

// resolve accepts or rejects a pending commission within the batch; kind
// is resolveAccepted, resolveRejected or resolveExpired. Its provision log
// is written from the journal record (applier.go), at the batch's log time.
func (b *batch) resolve(c *commission.Commission, accept bool, reason string, kind byte) error {
	after, err := commission.Resolve(b.get, c, accept)
	if err != nil {
		return err
	}
	for i, p := range c.Provisions {
		b.updateHolding(p.Key, after[i])
	}
	b.removeCommission(c)
	b.logTime()
	b.recordResolve(c, kind, reason, after)
	b.emitted(1)
	b.l.m.countResolved(resolveType(kind), len(c.Provisions))
	return nil
}

func resolveReason(accept bool, reason string) (full string, kind byte) {
	if accept {
		return "ACCEPT:" + reason, resolveAccepted
	}
	return "REJECT:" + reason, resolveRejected
}

// Resolve accepts (accept true) or rejects a commission pending for client.
// It returns ErrNotFound if serial is not pending for that client.
func (l *Ledger) Resolve(ctx context.Context, client string, serial uint64, accept bool, reason string) error {
	defer since(l.m.resolveSeconds, time.Now())
	if !utf8.ValidString(reason) {
		return invalid("reason must be valid UTF-8")
	}
	return l.do(ctx, &resolveOp{client: client, serial: serial, accept: accept, reason: reason})
}

type resolveOp struct {
	client string
	serial uint64
	accept bool
	reason string
}

func (o *resolveOp) apply(b *batch) error {
	c := b.pending(o.serial)
	if c == nil || c.Client != o.client {
		return notPending(o.serial)
	}
	reason, kind := resolveReason(o.accept, o.reason)
	return b.resolve(c, o.accept, reason, kind)
}

// ResolveResult is the outcome of ResolveMany.
type ResolveResult struct {
	Accepted    []uint64
	Rejected    []uint64
	NotFound    []uint64 // not pending for the client
	Conflicting []uint64 // in both lists: neither accepted nor rejected
}

// ResolveMany accepts and rejects many commissions of client in one atomic
// step. A serial in both lists is conflicting, one not pending for client is
// not found; the rest are applied.
func (l *Ledger) ResolveMany(ctx context.Context, client string, accept, reject []uint64, reason string) (ResolveResult, error) {
	defer since(l.m.resolveSeconds, time.Now())
	if !utf8.ValidString(reason) {
		return ResolveResult{}, invalid("reason must be valid UTF-8")
	}
	o := &resolveManyOp{client: client, accept: accept, reject: reject, reason: reason}
	err := l.do(ctx, o)
	return o.res, err
}

type resolveManyOp struct {
	client         string
	anyClient      bool // every client's commissions (ResolveManyAny), not client's
	accept, reject []uint64
	reason         string
	res            ResolveResult
}

func (o *resolveManyOp) apply(b *batch) error {
	plan := commission.PlanResolve(o.accept, o.reject, func(s uint64) bool {
		c := b.pending(s)
		return c != nil && (o.anyClient || c.Client == o.client)
	})
	// Resolving a pending commission cannot fail (usage_min <= usage_max
	// holds for every holding, and the commission's own share is in both),
	// so applying them one by one is all or nothing.
	for _, s := range plan.Accept {
		reason, kind := resolveReason(true, o.reason)
		if err := b.resolve(b.pending(s), true, reason, kind); err != nil {
			return err
		}
	}
	for _, s := range plan.Reject {
		reason, kind := resolveReason(false, o.reason)
		if err := b.resolve(b.pending(s), false, reason, kind); err != nil {
			return err
		}
	}
	o.res = ResolveResult{Accepted: plan.Accept, Rejected: plan.Reject,
		NotFound: plan.NotFound, Conflicting: plan.Conflicting}
	return nil
}

// ReasonExpired is the reason of commissions the ledger rejects at their deadline.
const ReasonExpired = "EXPIRED"

type expireOp struct{}

func (o *expireOp) apply(b *batch) error {
	w := &b.l.w
	for len(w.expiry) > 0 && !w.expiry[0].deadline.After(b.now) {
		it := heap.Pop(&w.expiry).(expiryItem)
		c := b.pending(it.serial)
		if c == nil {
			continue
		}
		if err := b.resolve(c, false, "REJECT:"+ReasonExpired, resolveExpired); err != nil {
			return err
		}
	}
	return nil
}
