package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// The Astakos commissions: issue, pending, info, action and resolve many
// (/account/v1.0/commissions...).

// maxTTL bounds the ttl of a commission, in seconds: the ledger's bound.
const maxTTL = int64(ledger.MaxTTL / time.Second)

// maxSerials bounds the serials of one resolve-many call.
const maxSerials = 10000

// The bodies of the commission routes are read in one pass by the scanner
// of jsonscan.go into their types. They are read the lineage's way: keys it
// did not read are ignored, and of a key given twice the last counts (as
// they did when these bodies were read into a map); every key read is
// type-checked, in a fixed order, once the whole body is known to be JSON.

// span is the bytes of a value in a body (nil: the key was not given).
type span []byte

func (v span) null() bool { return string(v) == "null" }

// str reads v as a JSON string; ok is false if it is not one.
func (v span) str() (s string, ok bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	plain := true
	for _, c := range v {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	return unquote(v, plain), true
}

// boolean reads v as JSON true or false.
func (v span) boolean() (b, ok bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// bodyReader reads one body: a scanner and the scratch of the provisions,
// kept between calls (bodyReaders).
type bodyReader struct {
	s     scanner
	provs []holdings.Provision
}

var bodyReaders = sync.Pool{New: func() any { return new(bodyReader) }}

// readBodyObject starts reading body, which must be a JSON object: it
// returns a reader positioned in the object (nil for a body that is not an
// object but that the lineage read as an empty one), or the fault of a body
// that is no object. Release the reader with done.
func readBodyObject(body []byte) (*bodyReader, error) {
	d := bodyReaders.Get().(*bodyReader)
	d.s.reset(body)
	if d.s.peek() != '{' {
		d.done()
		return nil, notObject(body)
	}
	d.s.enter('{')
	return d, nil
}

func (d *bodyReader) done() {
	d.s.reset(nil)
	clear(d.provs)
	if cap(d.provs) > 64 {
		d.provs = nil
	}
	bodyReaders.Put(d)
}

// members reads the body's object, which readBodyObject entered: it calls
// member for each key, with the key's value (escapes read), which reads the
// key's value and says whether it was JSON; then it checks what follows
// the object. The fault is that of a body that is not JSON or that has data
// after the object.
func (d *bodyReader) members(member func(key []byte) bool) error {
	if !d.object(member) {
		return syntaxFault(d.s.b)
	}
	// What json.Decoder leaves after the value: anything but a closing
	// bracket is refused.
	d.s.space()
	if s := &d.s; s.i < len(s.b) && s.b[s.i] != ']' && s.b[s.i] != '}' {
		return newFault(http.StatusBadRequest, "request body has data after the JSON value")
	}
	return nil
}

// object reads the members of the object the reader just entered, calling
// member for each key as members does. It returns false at a syntax error.
func (d *bodyReader) object(member func(key []byte) bool) bool {
	s := &d.s
	for first := true; ; first = false {
		more, ok := s.more(first)
		if !more || !ok {
			return ok
		}
		start, end, plain, ok := s.key()
		if !ok {
			return false
		}
		key := s.b[start+1 : end-1]
		if !plain {
			key = []byte(unquote(s.b[start:end], false))
		}
		if !member(key) {
			return false
		}
	}
}

// value reads the value of a member.
func (d *bodyReader) value() (span, bool) {
	start, end, ok := d.s.value()
	if !ok {
		return nil, false
	}
	return span(d.s.b[start:end:end]), true
}

// issueFields are an issue body as read: the values of its keys, and its
// provisions read or what is wrong with them.
type issueFields struct {
	// provisions is the value of "provisions", but for a list, read into
	// the reader's provs, which is "[" here; badProvision is what is wrong
	// with the list's first wrong provision.
	provisions                         span
	badProvision                       error
	force, autoAccept, name, ttl, idem span
}

// parseIssue reads an issue body into a request (Client left unset).
func (s *Server) parseIssue(body []byte, headerKey string) (ledger.IssueRequest, error) {
	var req ledger.IssueRequest
	d, err := readBodyObject(body)
	if err != nil {
		return req, err
	}
	if d == nil {
		return req, badRequest("Provisions are missing.")
	}
	defer d.done()
	var b issueFields
	err = d.members(func(key []byte) (ok bool) {
		switch string(key) {
		case "provisions":
			if d.s.peek() != '[' {
				b.provisions, ok = d.value()
				b.badProvision = nil
				return ok
			}
			b.provisions = span("[")
			b.badProvision, ok = d.readProvisions()
			return ok
		case "force":
			b.force, ok = d.value()
		case "auto_accept":
			b.autoAccept, ok = d.value()
		case "name":
			b.name, ok = d.value()
		case "ttl":
			b.ttl, ok = d.value()
		case "idempotency_key":
			b.idem, ok = d.value()
		default:
			_, ok = d.value()
		}
		return ok
	})
	if err != nil {
		return req, err
	}
	switch {
	case b.provisions == nil || b.provisions.null():
		return req, badRequest("Provisions are missing.")
	case b.provisions[0] != '[':
		return req, badRequest("Provisions should be a list.")
	case b.badProvision != nil:
		return req, b.badProvision
	}
	req.Provisions = slices.Clone(d.provs)
	if req.Provisions == nil {
		req.Provisions = []holdings.Provision{}
	}
	var ie *holdings.InvalidError
	if err := s.limits.ValidateProvisions(req.Provisions); errors.As(err, &ie) {
		switch ie.Problem {
		case holdings.TooMany:
			return req, badRequest("a commission has at most %d provisions; this one has %d", ie.Max, len(req.Provisions))
		case holdings.Empty:
			return req, badRequest("Malformed provision %d: %q must not be empty", ie.Provision, ie.Part)
		case holdings.TooLong:
			return req, badRequest("Malformed provision %d: %q is longer than %d bytes", ie.Provision, ie.Part, ie.Max)
		}
		return req, badRequest("Malformed provision %d: %q must be valid UTF-8", ie.Provision, ie.Part)
	}
	var ok bool
	if b.force != nil {
		if req.Force, ok = b.force.boolean(); !ok {
			return req, badRequest(`"force" option should be a boolean.`)
		}
	}
	if b.autoAccept != nil {
		if req.AutoAccept, ok = b.autoAccept.boolean(); !ok {
			return req, badRequest(`"auto_accept" option should be a boolean.`)
		}
	}
	if b.name != nil {
		if req.Name, ok = b.name.str(); !ok {
			return req, badRequest("Commission name should be a string.")
		}
		if len(req.Name) > s.opts.MaxNameLen {
			return req, badRequest("Commission name is longer than %d bytes.", s.opts.MaxNameLen)
		}
	}
	if b.ttl != nil && !b.ttl.null() {
		ttl, err := intOf(b.ttl)
		switch {
		case err != nil:
			return req, badRequest(`"ttl" should be an integer number of seconds: %s %v`, b.ttl, err)
		case ttl < 0:
			return req, badRequest(`"ttl" must not be negative`)
		case ttl > maxTTL:
			return req, badRequest(`"ttl" is at most %d seconds`, maxTTL)
		}
		req.TTL = time.Duration(ttl) * time.Second
	}
	if b.idem != nil && !b.idem.null() {
		if req.IdempotencyKey, ok = b.idem.str(); !ok {
			return req, badRequest(`"idempotency_key" should be a string.`)
		}
	}
	if headerKey != "" {
		if req.IdempotencyKey != "" && req.IdempotencyKey != headerKey {
			return req, badRequest("the Idempotency-Key header and the idempotency_key field differ")
		}
		req.IdempotencyKey = headerKey
	}
	if !utf8.ValidString(req.IdempotencyKey) {
		return req, badRequest("the idempotency key is not valid UTF-8")
	}
	if len(req.IdempotencyKey) > s.opts.MaxNameLen {
		return req, badRequest("the idempotency key is longer than %d bytes", s.opts.MaxNameLen)
	}
	return req, nil
}

// readProvisions reads the list of provisions the reader is at into
// d.provs; bad is the fault of the first provision that is wrong (the
// others are then only scanned). ok is false at a syntax error.
func (d *bodyReader) readProvisions() (bad error, ok bool) {
	d.provs = d.provs[:0]
	if !d.s.enter('[') {
		return nil, false
	}
	for i, first := 0, true; ; i, first = i+1, false {
		more, ok := d.s.more(first)
		if !more || !ok {
			return bad, ok
		}
		if bad != nil {
			if _, ok := d.value(); !ok {
				return nil, false
			}
			continue
		}
		p, err, ok := d.readProvision()
		if !ok {
			return nil, false
		}
		if err != nil {
			bad = badRequest("Malformed provision %d: %s", i, err)
			continue
		}
		d.provs = append(d.provs, p)
	}
}

// readProvision reads one provision, {holder, source, resource, quantity};
// err says what is wrong with it, ok is false at a syntax error.
func (d *bodyReader) readProvision() (p holdings.Provision, err error, ok bool) {
	if d.s.peek() != '{' {
		_, ok = d.value()
		return p, errors.New("a provision is an object {holder, source, resource, quantity}"), ok
	}
	d.s.enter('{')
	var holder, resource, source, quantity span
	ok = d.object(func(key []byte) (ok bool) {
		var v span
		if v, ok = d.value(); !ok {
			return false
		}
		switch string(key) {
		case "holder":
			holder = v
		case "resource":
			resource = v
		case "source":
			source = v
		case "quantity":
			quantity = v
		}
		return true
	})
	if !ok {
		return p, nil, false
	}
	str := func(name string, v span) (string, error) {
		if v == nil {
			return "", fmt.Errorf("%q is missing", name)
		}
		s, ok := v.str()
		if !ok {
			return "", fmt.Errorf("%q should be a string", name)
		}
		return s, nil
	}
	if p.Key.Holder, err = str("holder", holder); err != nil {
		return p, err, true
	}
	if p.Key.Resource, err = str("resource", resource); err != nil {
		return p, err, true
	}
	switch {
	case source == nil:
		return p, errors.New(`"source" is missing (it may be null)`), true
	case source.null():
		p.Key.Source = holdings.NullSource
	default:
		name, ok := source.str()
		if !ok {
			return p, errors.New(`"source" should be a string or null`), true
		}
		p.Key.Source = holdings.SourceOf(name)
	}
	if quantity == nil {
		return p, errors.New(`"quantity" is missing`), true
	}
	if p.Quantity, err = intOf(quantity); err != nil {
		return p, fmt.Errorf(`"quantity" %s %v`, quantity, err), true
	}
	if p.Quantity == math.MinInt64 {
		return p, fmt.Errorf(`"quantity" %s %v`, quantity, errRange), true
	}
	return p, nil, true
}

// The service half of the Astakos commissions is written once for both
// wires: each function below takes what the call carried (the calling
// service's name, authenticated and authorised by the wire; the body; a
// serial of the path or the subject) and returns the answer's body or a
// fault. The HTTP handlers (ast*) and the NATS endpoints (nats.go) only
// read their wire and write the answer.

// issue issues the commission of body for the service svc: headerKey is
// the idempotency key the wire carried beside the body ("" if none).
func (s *Server) issue(ctx context.Context, svc string, body []byte, headerKey string) (uint64, error) {
	req, err := s.parseIssue(body, headerKey)
	if err != nil {
		return 0, err
	}
	req.Client = svc
	res, err := s.l.Issue(ctx, req)
	if err != nil {
		if errors.Is(err, ledger.ErrIdempotencyConflict) {
			return 0, newFault(http.StatusConflict, "the idempotency key was used with another request")
		}
		return 0, commissionFault(err)
	}
	return res.Serial, nil
}

// astIssue answers POST /account/v1.0/commissions.
func (s *Server) astIssue(c *call) error {
	body, err := c.pooledBody()
	if err != nil {
		return err
	}
	serial, err := s.issue(c.r.Context(), c.p.Service.Name, body, strings.TrimSpace(c.r.Header.Get("Idempotency-Key")))
	if err != nil {
		return err
	}
	writeRaw(c.w, http.StatusCreated, appendIssued(c.scratch[:0], serial))
	return nil
}

// appendIssued appends the answer of an issue, {"serial": N}
// (wire.Issued), built by hand: it is half of every commission, and no
// reflection is needed for one number.
func appendIssued(b []byte, serial uint64) []byte {
	b = append(b, `{"serial":`...)
	b = strconv.AppendUint(b, serial, 10)
	return append(b, '}')
}

// appendPending appends the answer of pending for the service svc: the
// serials of its pending commissions.
func (s *Server) appendPending(b []byte, svc string) []byte {
	pending := s.l.Pending(svc)
	out := make([]int64, len(pending))
	for i, v := range pending {
		out[i] = int64(v)
	}
	return appendSerials(b, out)
}

// astPending answers GET /account/v1.0/commissions.
func (s *Server) astPending(c *call) error {
	writeRaw(c.w, http.StatusOK, s.appendPending(nil, c.p.Service.Name))
	return nil
}

// appendSerials appends vs as encoding/json encodes a []int64.
func appendSerials(b []byte, vs []int64) []byte {
	if vs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return append(b, ']')
}

// appendResolved appends r as encoding/json encodes it, the serials
// without reflection; a failed pair (an error, rare) is its MarshalJSON's.
func appendResolved(b []byte, r wire.Resolved) ([]byte, error) {
	b = appendSerials(append(b, `{"accepted":`...), r.Accepted)
	b = appendSerials(append(b, `,"rejected":`...), r.Rejected)
	b = append(b, `,"failed":`...)
	if r.Failed == nil {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i, f := range r.Failed {
		if i > 0 {
			b = append(b, ',')
		}
		pair, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		b = append(b, pair...)
	}
	return append(b, "]}"...), nil
}

// astSerial reads the {serial} of an Astakos path (or a subject), the
// lineage's way; ok is false for a serial that can name no commission
// (zero or negative).
func astSerial(raw string) (serial uint64, ok bool, err error) {
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, false, nil // an integer, but no serial
		}
		return 0, false, badRequest("Serial should be an integer.")
	}
	if v <= 0 {
		return 0, false, nil
	}
	return uint64(v), true, nil
}

func serialNotFound(raw string) *Fault {
	return newFault(http.StatusNotFound, fmt.Sprintf("serial %s does not exist", raw))
}

// commissionInfo is the pending commission rawSerial of the service svc.
func (s *Server) commissionInfo(svc, rawSerial string) (wire.CommissionInfo, error) {
	serial, ok, err := astSerial(rawSerial)
	if err != nil {
		return wire.CommissionInfo{}, err
	}
	if !ok {
		return wire.CommissionInfo{}, serialNotFound(rawSerial)
	}
	cm, err := s.l.Commission(svc, serial)
	if errors.Is(err, ledger.ErrNotFound) {
		return wire.CommissionInfo{}, serialNotFound(rawSerial)
	}
	if err != nil {
		return wire.CommissionInfo{}, err
	}
	info := wire.CommissionInfo{Serial: int64(cm.Serial), Name: cm.Name, IssueTime: wire.TimeOf(cm.IssueTime),
		Provisions: make([]wire.Provision, len(cm.Provisions))}
	for i, p := range cm.Provisions {
		info.Provisions[i] = wire.Provision{Holder: p.Key.Holder, Source: p.Key.Source.Ptr(), Resource: p.Key.Resource, Quantity: p.Quantity}
	}
	return info, nil
}

// astCommission answers GET /account/v1.0/commissions/{serial}.
func (s *Server) astCommission(c *call) error {
	info, err := s.commissionInfo(c.p.Service.Name, c.r.PathValue("serial"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, info)
}

// reason reads the optional "reason" of a resolve body.
func (s *Server) reason(v span) (string, error) {
	if v == nil || v.null() {
		return "", nil
	}
	r, ok := v.str()
	if !ok {
		return "", badRequest(`"reason" should be a string.`)
	}
	if err := s.checkName(`"reason"`, r); err != nil {
		return "", err
	}
	return r, nil
}

// actionBody is the body of POST commissions/{serial}/action: which of
// "accept" and "reject" it names (whatever their values), and its reason.
type actionBody struct {
	accept, reject bool
	reason         span
}

// readAction reads an action body.
func readAction(body []byte) (actionBody, error) {
	var b actionBody
	d, err := readBodyObject(body)
	if d == nil {
		return b, err
	}
	defer d.done()
	err = d.members(func(key []byte) (ok bool) {
		switch string(key) {
		case "accept":
			b.accept = true
		case "reject":
			b.reject = true
		case "reason":
			b.reason, ok = d.value()
			return ok
		}
		_, ok = d.value()
		return ok
	})
	return b, err
}

// commissionAction accepts or rejects, as body says, the pending
// commission rawSerial of the service svc.
func (s *Server) commissionAction(ctx context.Context, svc, rawSerial string, body []byte) error {
	b, err := readAction(body)
	if err != nil {
		return err
	}
	serial, ok, err := astSerial(rawSerial)
	if err != nil {
		return err
	}
	if b.accept == b.reject {
		return badRequest("Specify either accept or reject action.")
	}
	reason, err := s.reason(b.reason)
	if err != nil {
		return err
	}
	if !ok {
		return serialNotFound(rawSerial)
	}
	err = s.l.Resolve(ctx, svc, serial, b.accept, reason)
	if errors.Is(err, ledger.ErrNotFound) {
		return serialNotFound(rawSerial)
	}
	return err
}

// astAction answers POST /account/v1.0/commissions/{serial}/action.
func (s *Server) astAction(c *call) error {
	body, err := c.pooledBody()
	if err != nil {
		return err
	}
	if err := s.commissionAction(c.r.Context(), c.p.Service.Name, c.r.PathValue("serial"), body); err != nil {
		return err
	}
	return c.writeEmpty(http.StatusOK)
}

// resolveBody is the body of POST commissions/action: its serials to
// accept and to reject, or what is wrong with each list, and its reason.
type resolveBody struct {
	accept, reject       []int64
	acceptErr, rejectErr error
	reason               span
}

// readResolve reads a resolve-many body.
func readResolve(body []byte) (resolveBody, error) {
	var b resolveBody
	d, err := readBodyObject(body)
	if d == nil {
		return b, err
	}
	defer d.done()
	err = d.members(func(key []byte) (ok bool) {
		switch string(key) {
		case "accept":
			b.accept, b.acceptErr, ok = d.readSerials()
		case "reject":
			b.reject, b.rejectErr, ok = d.readSerials()
		case "reason":
			b.reason, ok = d.value()
		default:
			_, ok = d.value()
		}
		return ok
	})
	return b, err
}

// readSerials reads the "accept" or "reject" list of a resolve-many body;
// bad says what is wrong with it, ok is false at a syntax error.
func (d *bodyReader) readSerials() (serials []int64, bad error, ok bool) {
	if d.s.peek() != '[' {
		_, ok = d.value()
		return nil, badRequest(`"accept" and "reject" should reference lists of serials.`), ok
	}
	d.s.enter('[')
	serials = []int64{}
	for first := true; ; first = false {
		more, ok := d.s.more(first)
		if !more || !ok {
			return serials, bad, ok
		}
		v, ok := d.value()
		if !ok {
			return nil, nil, false
		}
		if bad != nil {
			continue
		}
		n, err := intOf(v)
		switch {
		case errors.Is(err, errRange):
			bad = badRequest("Serials should be integer: %s %v", v, err)
		case err != nil:
			bad = badRequest("Serials should be integer.")
		default:
			serials = append(serials, n)
		}
	}
}

// failedSerial is a serial a resolve-many could not apply, with its fault.
func failedSerial(serial int64, f *Fault) wire.FailedSerial {
	return wire.FailedSerial{Serial: serial, Fault: wire.Faults{f.Kind: {Code: f.Code, Message: f.Message, Details: f.Details}}}
}

// resolveMany accepts and rejects the pending commissions of the service
// svc that body names, and appends the answer to b.
func (s *Server) resolveMany(ctx context.Context, svc string, body, b []byte) ([]byte, error) {
	rb, err := readResolve(body)
	switch {
	case err != nil:
		return nil, err
	case rb.acceptErr != nil:
		return nil, rb.acceptErr
	case rb.rejectErr != nil:
		return nil, rb.rejectErr
	}
	accept, reject := rb.accept, rb.reject
	if len(accept)+len(reject) > maxSerials {
		return nil, badRequest("at most %d serials may be resolved at once", maxSerials)
	}
	reason, err := s.reason(rb.reason)
	if err != nil {
		return nil, err
	}
	acc, badAcc := positiveSerials(accept)
	rej, badRej := positiveSerials(reject)
	res, err := s.l.ResolveMany(ctx, svc, acc, rej, reason)
	if err != nil {
		return nil, err
	}
	return appendResolved(b, resolvedView(res, badAcc, badRej))
}

// positiveSerials splits the serials of a resolve-many list into those
// that may name a commission (positive) and those that cannot (zero,
// negative; each once), which resolvedView settles.
func positiveSerials(list []int64) (ok []uint64, bad []int64) {
	for _, v := range list {
		if v > 0 {
			ok = append(ok, uint64(v))
		} else if !slices.Contains(bad, v) {
			bad = append(bad, v)
		}
	}
	return ok, bad
}

// resolvedView is the answer of a resolve-many: the ledger's result, and
// the serials that could name no commission settled the ledger's way (in
// both lists they conflict, else they are not found).
func resolvedView(res ledger.ResolveResult, badAcc, badRej []int64) wire.Resolved {
	out := wire.Resolved{Accepted: make([]int64, len(res.Accepted)), Rejected: make([]int64, len(res.Rejected)),
		Failed: []wire.FailedSerial{}}
	for i, v := range res.Accepted {
		out.Accepted[i] = int64(v)
	}
	for i, v := range res.Rejected {
		out.Rejected[i] = int64(v)
	}
	notFound := func(v int64) {
		out.Failed = append(out.Failed, failedSerial(v, serialNotFound(strconv.FormatInt(v, 10))))
	}
	conflicting := func(v int64) {
		out.Failed = append(out.Failed, failedSerial(v, badRequest("cannot both accept and reject serial %d", v)))
	}
	for _, v := range res.NotFound {
		notFound(int64(v))
	}
	for _, v := range badAcc {
		if !slices.Contains(badRej, v) {
			notFound(v)
		}
	}
	for _, v := range badRej {
		if !slices.Contains(badAcc, v) {
			notFound(v)
		}
	}
	for _, v := range res.Conflicting {
		conflicting(int64(v))
	}
	for _, v := range badAcc {
		if slices.Contains(badRej, v) {
			conflicting(v)
		}
	}
	return out
}

// astResolveMany answers POST /account/v1.0/commissions/action.
func (s *Server) astResolveMany(c *call) error {
	body, err := c.pooledBody()
	if err != nil {
		return err
	}
	answer, err := s.resolveMany(c.r.Context(), c.p.Service.Name, body, nil)
	if err != nil {
		return err
	}
	writeRaw(c.w, http.StatusOK, answer)
	return nil
}
