package identity

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/ledger"
)

// resourceName is "<service>.<name>": lower-case words of letters, digits,
// '_' and '-'.
var resourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}\.[a-z0-9][a-z0-9_.-]{0,127}$`)

// CreateResource registers a resource of a registered service and, in the
// same batch, creates its holdings: every user's base project at the
// resource's uplimit, and every other project (when AllowInProjects) at its
// project default.
func (s *Store) CreateResource(ctx context.Context, r Resource) (*Resource, error) {
	switch {
	case !resourceName.MatchString(r.Name):
		return nil, invalidf("resource name must be <service>.<name> in lower case, got %q", r.Name)
	case r.Service == "" || !strings.HasPrefix(r.Name, r.Service+"."):
		return nil, invalidf("resource %s must be named after its service (%q)", r.Name, r.Service)
	case r.UpLimit < 0 || r.ProjectDefault < 0:
		return nil, invalidf("uplimit and project_default must not be negative")
	}
	if err := checkText("unit", r.Unit, 64); err != nil {
		return nil, err
	}
	if err := checkText("description", r.Description, 1000); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	_, exists := s.resources[r.Name]
	_, service := s.services[r.Service]
	var settings []ledger.HoldingSetting
	var projects []*Project
	if !exists && service {
		// Base projects: the resource at its uplimit, in the policies and in
		// the holdings, for every user.
		for _, u := range s.users {
			settings = append(settings, baseHoldings(u.UUID, []*Resource{&r})...)
			if base := s.projects[u.UUID]; base != nil && base.Base {
				nb := *base
				nb.Policies = maps.Clone(base.Policies)
				if nb.Policies == nil {
					nb.Policies = map[string]Policy{}
				}
				nb.Policies[r.Name] = Policy{ProjectCapacity: r.UpLimit, MemberCapacity: r.UpLimit}
				projects = append(projects, &nb)
			}
		}
		ps, updated := s.projectSettingsForNewResourceLocked(&r)
		settings, projects = append(settings, ps...), append(projects, updated...)
	}
	s.mu.RUnlock()
	if exists {
		return nil, conflictf("resource %s exists", r.Name)
	}
	if !service {
		return nil, notFoundf("no service %q", r.Service)
	}
	r.Created = s.now()
	err := s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixResource, r.Name, &r); err != nil {
			return err
		}
		for _, p := range projects {
			if err := put(tx, prefixProject, p.UUID, p); err != nil {
				return err
			}
		}
		if err := tx.SetHoldings(settings...); err != nil {
			return err
		}
		return emit(tx, catalog.ResourceRegisteredType, resourceEvent(&r))
	}, func() {
		s.resources[r.Name] = &r
		for _, p := range projects {
			s.projects[p.UUID] = p
		}
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// ResourceFilter selects registered resources (every one, by name); Offset
// and Limit cut a window of them (see Lists in identity.go).
type ResourceFilter struct {
	Offset, Limit int
}

// FindResources returns the window of the resources f selects and the
// count of all of them.
func (s *Store) FindResources(f ResourceFilter) ([]*Resource, int, error) {
	s.mu.RLock()
	all := s.resourceList()
	s.mu.RUnlock()
	return window(all, f.Offset, f.Limit)
}

// FindResourceByName returns one resource.
func (s *Store) FindResourceByName(name string) (*Resource, error) {
	s.mu.RLock()
	r := s.resources[name]
	s.mu.RUnlock()
	if r == nil {
		return nil, notFoundf("no resource %q", name)
	}
	return r, nil
}

// resourceList is every resource, by name, for callers holding s.mu.
func (s *Store) resourceList() []*Resource {
	out := make([]*Resource, 0, len(s.resources))
	for _, r := range s.resources {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Resource) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Serves reports whether service serves resource: whether the resource is
// registered to it. This is the one rule of the API (the holdings a
// service may read, the quotas of the Astakos service routes); a resource
// that is not registered is served by no one, whatever its name
// (docs/identity.md).
func (s *Store) Serves(service, resource string) bool {
	s.mu.RLock()
	r := s.resources[resource]
	s.mu.RUnlock()
	return r != nil && r.Service == service
}

// ServedResources returns the names of the resources service serves (see
// Serves), sorted; none for an unknown service.
func (s *Store) ServedResources(service string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, r := range s.resources {
		if r.Service == service {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return out
}
