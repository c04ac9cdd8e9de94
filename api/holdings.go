package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// Holdings, set, found and deleted (DESIGN.md §1's set / get / delete
// quota): /account/v1.0/holdings.

// holdingView is a holding as the API shows it.
func holdingView(k holdings.Key, v holdings.Value) wire.Holding {
	return wire.Holding{HoldingKey: keyView(k), Limit: v.Limit, UsageMin: v.UsageMin, UsageMax: v.UsageMax}
}

// keyView is a holding's key as the API shows it.
func keyView(k holdings.Key) wire.HoldingKey {
	return wire.HoldingKey{Holder: k.Holder, Source: k.Source.Ptr(), Resource: k.Resource}
}

// holdingKey is the key of entry i of a request, checked by holdings; a
// left-out source is the null source.
func (s *Server) holdingKey(i int, holder string, source *string, resource string) (holdings.Key, error) {
	k := holdings.Key{Holder: holder, Source: holdings.SourceFromPtr(source), Resource: resource}
	var ie *holdings.InvalidError
	if err := s.limits.ValidateKey(k); errors.As(err, &ie) {
		switch ie.Problem {
		case holdings.Empty:
			return k, badRequest("holdings[%d].%s must be a non-empty string", i, ie.Part)
		case holdings.TooLong:
			return k, badRequest("holdings[%d]: holder, source and resource are at most %d bytes", i, ie.Max)
		}
		return k, badRequest("holdings[%d]: %v", i, err)
	}
	return k, nil
}

// setHoldings answers POST /account/v1.0/holdings.
func (s *Server) setHoldings(c *call) error {
	var in wire.HoldingSettings
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Holdings == nil {
		return badRequest(`holdings is required: {"holdings": [{"holder", "source", "resource", "limit"}, ...]}`)
	}
	settings := make([]ledger.HoldingSetting, 0, len(in.Holdings))
	var order []holdings.Key
	seen := make(map[holdings.Key]bool, len(in.Holdings))
	for i, e := range in.Holdings {
		k, err := s.holdingKey(i, e.Holder, e.Source, e.Resource)
		if err != nil {
			return err
		}
		if e.Limit == nil {
			return badRequest("holdings[%d].limit is required", i)
		}
		if *e.Limit < 0 {
			return badRequest("holdings[%d].limit must not be negative", i)
		}
		settings = append(settings, ledger.HoldingSetting{Key: k, Limit: *e.Limit})
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}
	if len(settings) > 0 {
		if err := s.l.SetHoldings(c.r.Context(), settings); err != nil {
			return err
		}
	}
	out := wire.Holdings{Holdings: make([]wire.Holding, 0, len(order))}
	for _, k := range order {
		if v, ok := s.l.FindHoldingByKey(k); ok {
			out.Holdings = append(out.Holdings, holdingView(k, v))
		}
	}
	return c.json(http.StatusOK, out)
}

// getHoldings answers GET /account/v1.0/holdings.
func (s *Server) getHoldings(c *call) error {
	svc := c.p.Service
	switch {
	case svc != nil:
		if !identity.Allowed(c.p, identity.ActServiceRead) {
			return newFault(http.StatusForbidden, "not allowed to "+string(identity.ActServiceRead))
		}
	case !c.canReadAll():
		return newFault(http.StatusForbidden, "not allowed to "+string(identity.ActReadAll))
	}
	q := c.q
	f := ledger.HoldingFilter{Holders: listParam(q, "holder", false), Resources: listParam(q, "resource", false)}
	for _, src := range listParam(q, "source", true) {
		f.Sources = append(f.Sources, holdings.SourceOf(src))
	}
	switch v := q.Get("null_source"); v {
	case "", "0", "false":
	case "1", "true":
		f.Sources = append(f.Sources, holdings.NullSource)
	default:
		return badRequest("null_source must be 1, true, 0 or false, got %q", v)
	}
	if svc != nil {
		for _, r := range f.Resources {
			if !s.id.Serves(svc.Name, r) {
				return newFault(http.StatusForbidden, fmt.Sprintf("service %s does not serve resource %q", svc.Name, r))
			}
		}
		if len(f.Resources) == 0 {
			if f.Resources = s.id.ServedResources(svc.Name); len(f.Resources) == 0 {
				return c.json(http.StatusOK, wire.Holdings{Holdings: []wire.Holding{}})
			}
		}
	}
	hs := s.l.FindHoldings(f)
	out := wire.Holdings{Holdings: make([]wire.Holding, 0, len(hs))}
	for _, h := range hs {
		out.Holdings = append(out.Holdings, holdingView(h.Key, h.Value))
	}
	return c.json(http.StatusOK, out)
}

// deleteHoldings answers DELETE /account/v1.0/holdings.
func (s *Server) deleteHoldings(c *call) error {
	var in wire.HoldingKeys
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Holdings == nil {
		return badRequest(`holdings is required: {"holdings": [{"holder", "source", "resource"}, ...]}`)
	}
	keys := make([]holdings.Key, 0, len(in.Holdings))
	for i, e := range in.Holdings {
		k, err := s.holdingKey(i, e.Holder, e.Source, e.Resource)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		if err := s.l.DeleteHoldings(c.r.Context(), keys); err != nil {
			return err
		}
	}
	return c.json(http.StatusOK, in)
}
