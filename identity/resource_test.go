package identity

import (
	"context"
	"slices"
	"testing"

	"github.com/quotaledger/quotaledger/internal/testkit"
)

func TestServes(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t) // cyclades is registered
	if _, _, err := f.s.CreateService(ctx, NewService{Name: "pithos", Type: "storage"}); err != nil {
		t.Fatal(err)
	}
	vm, ram := f.resource("vm", true, 1, 1), f.resource("ram", true, 1, 1)
	disk, err := f.s.CreateResource(ctx, Resource{Name: "pithos.disk", Service: "pithos"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, service, resource string
		want                    bool
	}{
		{"Registered", "cyclades", vm, true},
		{"RegisteredToAnother", "pithos", vm, false},
		{"Other", "pithos", disk.Name, true},
		{"UnregisteredNamedAfterIt", "cyclades", "cyclades.gpu", false},
		{"UnknownService", "nova", vm, false},
		{"Empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.s.Serves(tc.service, tc.resource); got != tc.want {
				t.Fatalf("Serves(%q, %q) = %v, want %v", tc.service, tc.resource, got, tc.want)
			}
		})
	}
	if got := f.s.ServedResources("cyclades"); !slices.Equal(got, []string{ram, vm}) {
		t.Errorf("cyclades serves %q", got)
	}
	if got := f.s.ServedResources("nova"); len(got) != 0 {
		t.Errorf("an unknown service serves %q", got)
	}
	// ServedResources and Serves agree.
	for _, svc := range []string{"cyclades", "pithos"} {
		for _, r := range testkit.Items(f.s.FindResources(ResourceFilter{})) {
			if f.s.Serves(svc, r.Name) != slices.Contains(f.s.ServedResources(svc), r.Name) {
				t.Errorf("%s, %s: Serves and ServedResources disagree", svc, r.Name)
			}
		}
	}
}
