package identity

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/ledger"
)

// serviceName is a service's name, which is also its commission clientkey.
var serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// NewService is what registering a service takes.
type NewService struct {
	Name      string
	Type      string
	Endpoints []Endpoint
	// TokenExpires, if set, is when the service's token stops working.
	TokenExpires time.Time
}

func checkEndpoints(es []Endpoint) error {
	if len(es) > 16 {
		return invalidf("a service has at most 16 endpoints")
	}
	for _, e := range es {
		u, err := url.Parse(e.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(e.PublicURL) > 2048 {
			return invalidf("endpoint publicURL must be an http(s) URL, got %q", e.PublicURL)
		}
		if err := checkText("versionId", e.VersionID, 64); err != nil {
			return err
		}
		if err := checkText("region", e.Region, 64); err != nil {
			return err
		}
	}
	return nil
}

// CreateService registers a service and makes its token: the secret is
// shown once.
func (s *Store) CreateService(ctx context.Context, in NewService) (string, *Service, error) {
	if !serviceName.MatchString(in.Name) {
		return "", nil, invalidf("service name must be lower-case letters, digits, '_' or '-', got %q", in.Name)
	}
	if err := checkText("type", in.Type, 64); err != nil {
		return "", nil, err
	}
	if err := checkEndpoints(in.Endpoints); err != nil {
		return "", nil, err
	}
	if !in.TokenExpires.IsZero() && !in.TokenExpires.After(s.now()) {
		return "", nil, invalidf("the token's expiry must be in the future")
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	_, exists := s.services[in.Name]
	s.mu.RUnlock()
	if exists {
		return "", nil, conflictf("service %s exists", in.Name)
	}
	svc := &Service{Name: in.Name, Type: in.Type, Endpoints: slices.Clone(in.Endpoints), Created: s.now()}
	if svc.Endpoints == nil {
		svc.Endpoints = []Endpoint{}
	}
	var secret string
	var tok *Token
	err := s.write(ctx, func(tx *ledger.Tx) error {
		var err error
		if secret, tok, err = s.stageToken(tx, KindService, svc.Name, svc.Name, false, in.TokenExpires); err != nil {
			return err
		}
		svc.TokenID = tok.ID
		if err := put(tx, prefixService, svc.Name, svc); err != nil {
			return err
		}
		return emit(tx, catalog.ServiceRegisteredType, serviceEvent(svc))
	}, func() {
		s.services[svc.Name] = svc
		s.addTokenLocked(tok)
	})
	if err != nil {
		return "", nil, err
	}
	return secret, svc, nil
}

// ServiceFilter selects services (every one, by name); Offset and Limit
// cut a window of them (see Lists in identity.go).
type ServiceFilter struct {
	Offset, Limit int
}

// FindServices returns the window of the services f selects and the
// count of all of them.
func (s *Store) FindServices(f ServiceFilter) ([]*Service, int, error) {
	s.mu.RLock()
	out := make([]*Service, 0, len(s.services))
	for _, svc := range s.services {
		out = append(out, svc)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Service) int { return strings.Compare(a.Name, b.Name) })
	return window(out, f.Offset, f.Limit)
}

// FindServiceByName returns one service.
func (s *Store) FindServiceByName(name string) (*Service, error) {
	s.mu.RLock()
	svc := s.services[name]
	s.mu.RUnlock()
	if svc == nil {
		return nil, notFoundf("no service %q", name)
	}
	return svc, nil
}

// RenewServiceToken gives a service a new token, expiring at expires (zero:
// never); the old one stops working.
func (s *Store) RenewServiceToken(ctx context.Context, name string, expires time.Time) (string, *Service, error) {
	if !expires.IsZero() && !expires.After(s.now()) {
		return "", nil, invalidf("the token's expiry must be in the future")
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, err := s.FindServiceByName(name)
	if err != nil {
		return "", nil, err
	}
	s.mu.RLock()
	olds := serviceTokens(s.tokensOfLocked(name))
	s.mu.RUnlock()
	svc := *old
	var secret string
	var tok *Token
	err = s.write(ctx, func(tx *ledger.Tx) error {
		for _, t := range olds {
			if err := s.stageRevoke(tx, t); err != nil {
				return err
			}
		}
		var err error
		if secret, tok, err = s.stageToken(tx, KindService, svc.Name, svc.Name, false, expires); err != nil {
			return err
		}
		svc.TokenID = tok.ID
		return put(tx, prefixService, svc.Name, &svc)
	}, func() {
		for _, t := range olds {
			s.removeTokenLocked(t)
		}
		s.services[svc.Name] = &svc
		s.addTokenLocked(tok)
	})
	if err != nil {
		return "", nil, err
	}
	return secret, &svc, nil
}

// DeleteService removes a service and its token. A service that still
// serves resources is refused (failure.Conflict, naming them): its
// resources would stay listed, in quotas and holdings, naming a service
// that no longer exists, and nothing could serve them again under that
// name's token. A resource is not removed; a service is renewed (its
// token) rather than removed and registered again.
func (s *Store) DeleteService(ctx context.Context, name string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	svc, err := s.FindServiceByName(name)
	if err != nil {
		return err
	}
	if rs := s.ServedResources(name); len(rs) > 0 {
		return failure.Mark(ErrServiceInUse, "service %s still serves resources %s: it cannot be removed", name, strings.Join(rs, ", "))
	}
	s.mu.RLock()
	toks := serviceTokens(s.tokensOfLocked(name))
	s.mu.RUnlock()
	return s.write(ctx, func(tx *ledger.Tx) error {
		if err := tx.Delete(recordKey(prefixService, name)); err != nil {
			return err
		}
		for _, t := range toks {
			if err := s.stageRevoke(tx, t); err != nil {
				return err
			}
		}
		return emit(tx, catalog.ServiceRemovedType, catalog.ServiceRemoved{Name: svc.Name})
	}, func() {
		delete(s.services, name)
		for _, t := range toks {
			s.removeTokenLocked(t)
		}
	})
}

// ErrServiceInUse is the refusal to remove a service that still serves
// resources (failure.Conflict; the message names them).
var ErrServiceInUse = failure.New(failure.Conflict, "the service still serves resources")

// serviceTokens keeps the service tokens of ts (an owner name could also be
// a user's uuid).
func serviceTokens(ts []*Token) []*Token {
	return slices.DeleteFunc(ts, func(t *Token) bool { return t.Kind != KindService })
}
