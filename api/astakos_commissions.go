package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
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

// parseIssue reads an issue body into a request (Client left unset).
func (s *Server) parseIssue(body []byte, headerKey string) (ledger.IssueRequest, error) {
	var req ledger.IssueRequest
	m, err := parseObject(body)
	if err != nil {
		return req, err
	}
	praw, ok := m["provisions"]
	if !ok || isNull(praw) {
		return req, badRequest("Provisions are missing.")
	}
	if praw[0] != '[' {
		return req, badRequest("Provisions should be a list.")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(praw, &list); err != nil {
		return req, badRequest("Provisions should be a list.")
	}
	req.Provisions = make([]holdings.Provision, 0, len(list))
	for i, raw := range list {
		p, err := parseProvision(raw)
		if err != nil {
			return req, badRequest("Malformed provision %d: %s", i, err)
		}
		req.Provisions = append(req.Provisions, p)
	}
	var ie *holdings.InvalidError
	if err := s.limits.ValidateProvisions(req.Provisions); errors.As(err, &ie) {
		switch ie.Problem {
		case holdings.TooMany:
			return req, badRequest("a commission has at most %d provisions; this one has %d", ie.Max, len(list))
		case holdings.Empty:
			return req, badRequest("Malformed provision %d: %q must not be empty", ie.Provision, ie.Part)
		case holdings.TooLong:
			return req, badRequest("Malformed provision %d: %q is longer than %d bytes", ie.Provision, ie.Part, ie.Max)
		}
		return req, badRequest("Malformed provision %d: %q must be valid UTF-8", ie.Provision, ie.Part)
	}
	if raw, ok := m["force"]; ok {
		if req.Force, ok = rawBool(raw); !ok {
			return req, badRequest(`"force" option should be a boolean.`)
		}
	}
	if raw, ok := m["auto_accept"]; ok {
		if req.AutoAccept, ok = rawBool(raw); !ok {
			return req, badRequest(`"auto_accept" option should be a boolean.`)
		}
	}
	if raw, ok := m["name"]; ok {
		if req.Name, ok = rawString(raw); !ok {
			return req, badRequest("Commission name should be a string.")
		}
		if len(req.Name) > s.opts.MaxNameLen {
			return req, badRequest("Commission name is longer than %d bytes.", s.opts.MaxNameLen)
		}
	}
	if raw, ok := m["ttl"]; ok && !isNull(raw) {
		ttl, err := rawInt(raw)
		switch {
		case err != nil:
			return req, badRequest(`"ttl" should be an integer number of seconds: %s %v`, raw, err)
		case ttl < 0:
			return req, badRequest(`"ttl" must not be negative`)
		case ttl > maxTTL:
			return req, badRequest(`"ttl" is at most %d seconds`, maxTTL)
		}
		req.TTL = time.Duration(ttl) * time.Second
	}
	if raw, ok := m["idempotency_key"]; ok && !isNull(raw) {
		if req.IdempotencyKey, ok = rawString(raw); !ok {
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

func parseProvision(raw json.RawMessage) (holdings.Provision, error) {
	var p holdings.Provision
	if raw[0] != '{' {
		return p, errors.New("a provision is an object {holder, source, resource, quantity}")
	}
	m, err := parseObject(raw)
	if err != nil {
		return p, err
	}
	str := func(name string) (string, error) {
		raw, ok := m[name]
		if !ok {
			return "", fmt.Errorf("%q is missing", name)
		}
		v, ok := rawString(raw)
		if !ok {
			return "", fmt.Errorf("%q should be a string", name)
		}
		return v, nil
	}
	if p.Key.Holder, err = str("holder"); err != nil {
		return p, err
	}
	if p.Key.Resource, err = str("resource"); err != nil {
		return p, err
	}
	src, ok := m["source"]
	switch {
	case !ok:
		return p, errors.New(`"source" is missing (it may be null)`)
	case isNull(src):
		p.Key.Source = holdings.NullSource
	default:
		name, ok := rawString(src)
		if !ok {
			return p, errors.New(`"source" should be a string or null`)
		}
		p.Key.Source = holdings.SourceOf(name)
	}
	q, ok := m["quantity"]
	if !ok {
		return p, errors.New(`"quantity" is missing`)
	}
	if p.Quantity, err = rawInt(q); err != nil {
		return p, fmt.Errorf(`"quantity" %s %v`, q, err)
	}
	if p.Quantity == math.MinInt64 {
		return p, fmt.Errorf(`"quantity" %s %v`, q, errRange)
	}
	return p, nil
}

// astIssue answers POST /account/v1.0/commissions.
func (s *Server) astIssue(c *call) error {
	body, err := readBody(c.r, s.opts.MaxBody)
	if err != nil {
		return err
	}
	req, err := s.parseIssue(body, strings.TrimSpace(c.r.Header.Get("Idempotency-Key")))
	if err != nil {
		return err
	}
	req.Client = c.p.Service.Name
	res, err := s.l.Issue(c.r.Context(), req)
	if err != nil {
		if errors.Is(err, ledger.ErrIdempotencyConflict) {
			return newFault(http.StatusConflict, "the idempotency key was used with another request")
		}
		return commissionFault(err)
	}
	return c.issued(res.Serial)
}

// issued answers an issue, {"serial": N} (wire.Issued), built by hand: it
// is half of every commission, and no reflection is needed for one number.
func (c *call) issued(serial uint64) error {
	var buf [32]byte
	b := append(buf[:0], `{"serial":`...)
	b = strconv.AppendUint(b, serial, 10)
	writeRaw(c.w, http.StatusCreated, append(b, '}'))
	return nil
}

// astPending answers GET /account/v1.0/commissions.
func (s *Server) astPending(c *call) error {
	pending := s.l.Pending(c.p.Service.Name)
	out := make([]int64, len(pending))
	for i, v := range pending {
		out[i] = int64(v)
	}
	return c.json(http.StatusOK, out)
}

// pathSerial reads the {serial} of the path; ok is false for a serial that
// can name no commission (zero or negative).
func pathSerial(c *call) (serial uint64, ok bool, err error) {
	raw := c.r.PathValue("serial")
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

// astCommission answers GET /account/v1.0/commissions/{serial}.
func (s *Server) astCommission(c *call) error {
	serial, ok, err := pathSerial(c)
	if err != nil {
		return err
	}
	if !ok {
		return serialNotFound(c.r.PathValue("serial"))
	}
	cm, err := s.l.Commission(c.p.Service.Name, serial)
	if errors.Is(err, ledger.ErrNotFound) {
		return serialNotFound(c.r.PathValue("serial"))
	}
	if err != nil {
		return err
	}
	info := wire.CommissionInfo{Serial: int64(cm.Serial), Name: cm.Name, IssueTime: wire.TimeOf(cm.IssueTime),
		Provisions: make([]wire.Provision, len(cm.Provisions))}
	for i, p := range cm.Provisions {
		info.Provisions[i] = wire.Provision{Holder: p.Key.Holder, Source: p.Key.Source.Ptr(), Resource: p.Key.Resource, Quantity: p.Quantity}
	}
	return c.json(http.StatusOK, info)
}

// reasonOf reads the optional "reason" of a resolve body.
func (c *call) reasonOf(m map[string]json.RawMessage) (string, error) {
	raw, ok := m["reason"]
	if !ok || isNull(raw) {
		return "", nil
	}
	r, ok := rawString(raw)
	if !ok {
		return "", badRequest(`"reason" should be a string.`)
	}
	if err := c.checkName(`"reason"`, r); err != nil {
		return "", err
	}
	return r, nil
}

// astAction answers POST /account/v1.0/commissions/{serial}/action.
func (s *Server) astAction(c *call) error {
	m, err := c.jsonObject()
	if err != nil {
		return err
	}
	serial, ok, err := pathSerial(c)
	if err != nil {
		return err
	}
	_, accept := m["accept"]
	_, reject := m["reject"]
	if accept == reject {
		return badRequest("Specify either accept or reject action.")
	}
	reason, err := c.reasonOf(m)
	if err != nil {
		return err
	}
	if !ok {
		return serialNotFound(c.r.PathValue("serial"))
	}
	err = s.l.Resolve(c.r.Context(), c.p.Service.Name, serial, accept, reason)
	if errors.Is(err, ledger.ErrNotFound) {
		return serialNotFound(c.r.PathValue("serial"))
	}
	if err != nil {
		return err
	}
	return c.writeEmpty(http.StatusOK)
}

// serialList reads the "accept" or "reject" list of a resolve-many body.
func serialList(m map[string]json.RawMessage, name string) ([]int64, error) {
	raw, ok := m[name]
	if !ok {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, badRequest(`"accept" and "reject" should reference lists of serials.`)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest(`"accept" and "reject" should reference lists of serials.`)
	}
	out := make([]int64, len(items))
	for i, it := range items {
		v, err := rawInt(it)
		if err != nil {
			if errors.Is(err, errRange) {
				return nil, badRequest("Serials should be integer: %s %v", it, err)
			}
			return nil, badRequest("Serials should be integer.")
		}
		out[i] = v
	}
	return out, nil
}

// failedSerial is a serial a resolve-many could not apply, with its fault.
func failedSerial(serial int64, f *Fault) wire.FailedSerial {
	return wire.FailedSerial{Serial: serial, Fault: wire.Faults{f.Kind: {Code: f.Code, Message: f.Message, Details: f.Details}}}
}

// astResolveMany answers POST /account/v1.0/commissions/action.
func (s *Server) astResolveMany(c *call) error {
	m, err := c.jsonObject()
	if err != nil {
		return err
	}
	accept, err := serialList(m, "accept")
	if err != nil {
		return err
	}
	reject, err := serialList(m, "reject")
	if err != nil {
		return err
	}
	if len(accept)+len(reject) > maxSerials {
		return badRequest("at most %d serials may be resolved at once", maxSerials)
	}
	reason, err := c.reasonOf(m)
	if err != nil {
		return err
	}
	// Serials that can name no commission (zero, negative) are settled
	// here, the ledger's way: in both lists they conflict, else not found.
	var acc, rej []uint64
	var badAcc, badRej []int64
	for _, v := range accept {
		if v > 0 {
			acc = append(acc, uint64(v))
		} else if !slices.Contains(badAcc, v) {
			badAcc = append(badAcc, v)
		}
	}
	for _, v := range reject {
		if v > 0 {
			rej = append(rej, uint64(v))
		} else if !slices.Contains(badRej, v) {
			badRej = append(badRej, v)
		}
	}
	res, err := s.l.ResolveMany(c.r.Context(), c.p.Service.Name, acc, rej, reason)
	if err != nil {
		return err
	}
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
	return c.json(http.StatusOK, out)
}
