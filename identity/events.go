package identity

import "github.com/quotaledger/quotaledger/events/catalog"

// The payloads of the events that carry a record (a service, a resource, a
// project): the catalog's types, built field for field from the record, so
// that a field added to a record does not reach the event stream unseen.

func serviceEvent(svc *Service) catalog.ServiceRegistered {
	var eps []catalog.Endpoint
	if svc.Endpoints != nil {
		eps = make([]catalog.Endpoint, len(svc.Endpoints))
		for i, ep := range svc.Endpoints {
			eps[i] = catalog.Endpoint{PublicURL: ep.PublicURL, VersionID: ep.VersionID, Region: ep.Region}
		}
	}
	return catalog.ServiceRegistered{Name: svc.Name, Type: svc.Type, Endpoints: eps, TokenID: svc.TokenID,
		Created: svc.Created}
}

func resourceEvent(r *Resource) catalog.ResourceRegistered {
	return catalog.ResourceRegistered{Name: r.Name, Unit: r.Unit, Description: r.Description, Service: r.Service,
		AllowInProjects: r.AllowInProjects, UpLimit: r.UpLimit, ProjectDefault: r.ProjectDefault, Created: r.Created}
}

func projectEvent(p *Project) catalog.ProjectCreated {
	var members []catalog.Member
	if p.Members != nil {
		members = make([]catalog.Member, len(p.Members))
		for i, m := range p.Members {
			members[i] = memberEvent(m)
		}
	}
	return catalog.ProjectCreated{UUID: p.UUID, Name: p.Name, Owner: p.Owner, State: p.State,
		Policies: policiesEvent(p.Policies), Members: members, Created: p.Created, Updated: p.Updated}
}

func policiesEvent(ps map[string]Policy) map[string]catalog.Policy {
	if ps == nil {
		return nil
	}
	out := make(map[string]catalog.Policy, len(ps))
	for r, p := range ps {
		out[r] = catalog.Policy{ProjectCapacity: p.ProjectCapacity, MemberCapacity: p.MemberCapacity}
	}
	return out
}

func memberEvent(m Member) catalog.Member {
	return catalog.Member{User: m.User, Group: m.Group, Role: string(m.Role)}
}
