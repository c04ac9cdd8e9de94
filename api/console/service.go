package console

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
)

// The services page (admins and readers): every registered service, its
// endpoints, and the resources it serves.

type serviceResource struct {
	Name string
	wire.ResourceInfo
}

type serviceView struct {
	wire.Service
	Resources []serviceResource
}

type servicesPage struct {
	Services []serviceView
	// Orphans are resources of no listed service.
	Orphans []serviceResource
}

// maxListPages bounds the pages of a list read whole (of 100 each).
const maxListPages = 50

// services lists the services and their resources.
func (c *Console) services(rq *request) error {
	ctx := rq.context()
	var all []wire.Service
	for p := 1; p <= maxListPages; p++ {
		page, err := c.api.FindServices(ctx, client.ServiceFilter{PageOptions: client.PageOptions{Page: p, PageSize: 100}})
		if err != nil {
			return err
		}
		all = append(all, page.Results...)
		if page.Next == nil {
			break
		}
	}
	resources, err := c.api.GetResources(ctx)
	if err != nil {
		return err
	}
	var page servicesPage
	byName := map[string]int{}
	for _, s := range all {
		byName[s.Name] = len(page.Services)
		page.Services = append(page.Services, serviceView{Service: s})
	}
	for name, info := range resources {
		r := serviceResource{Name: name, ResourceInfo: info}
		if i, ok := byName[info.Service]; ok {
			page.Services[i].Resources = append(page.Services[i].Resources, r)
		} else {
			page.Orphans = append(page.Orphans, r)
		}
	}
	byResource := func(a, b serviceResource) int { return cmp.Compare(a.Name, b.Name) }
	for i := range page.Services {
		slices.SortFunc(page.Services[i].Resources, byResource)
	}
	slices.SortFunc(page.Orphans, byResource)
	slices.SortFunc(page.Services, func(a, b serviceView) int { return cmp.Compare(a.Name, b.Name) })
	rq.render(http.StatusOK, "services", "Services and resources", "services", page)
	return nil
}
