package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// reserve reserves a VM for the user in their base project, accepts it,
// then asks for two more: past the limit.
func reserve(ctx context.Context, ql client.ServiceAPI, user string) error {
	serial, err := ql.IssueUserProjectCommission(ctx, user, user, map[string]int64{"compute.vm": 1},
		client.IssueOptions{Name: "create vm-1"})
	if err != nil {
		return err
	}
	fmt.Println("issued commission", serial)
	if err := ql.AcceptCommission(ctx, serial); err != nil {
		return err
	}
	_, err = ql.IssueUserProjectCommission(ctx, user, user, map[string]int64{"compute.vm": 2}, client.IssueOptions{})
	var limit *client.QuotaLimit
	if errors.As(err, &limit) {
		fmt.Printf("refused: %s, %s limit %d usage %d\n", limit.Name, limit.Provision.Resource, limit.Limit, limit.Usage)
		return nil
	}
	return err
}

// ExampleNewNATS is the README's example (its reserve, word for word:
// TestREADMENATSExample) against a server set up as serve --demo sets up
// its demo: a service compute with the resource compute.vm (uplimit 2),
// and a user.
func ExampleNewNATS() {
	natsURL, serviceToken, user, stop := exampleServer()
	defer stop()

	nc, err := nats.Connect(natsURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	if err := reserve(context.Background(), client.NewNATS(nc, serviceToken, client.NATSOptions{}), user); err != nil {
		fmt.Println(err)
	}
	// Output:
	// issued commission 1
	// refused: NoCapacityError, compute.vm limit 2 usage 1
}

// exampleServer runs a server's micro service on an embedded NATS server
// with the demo's service, resource and user, and returns the NATS URL,
// the service's token, the user's uuid and what stops it all.
func exampleServer() (natsURL, serviceToken, user string, stop func()) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) (string, string, string, func()) {
		stop()
		panic(err)
	}
	dir := must(os.MkdirTemp("", "example-nats-"))
	stops = append(stops, func() { _ = os.RemoveAll(dir) })
	l, err := ledger.Open(ledger.Options{Dir: dir + "/ledger", Logger: zerolog.Nop()})
	if err != nil {
		return fail(err)
	}
	stops = append(stops, func() { _ = l.Close() })
	id, err := identity.Open(l, identity.Options{Hash: identitytest.CheapHash, Logger: zerolog.Nop()})
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	if serviceToken, _, err = id.CreateService(ctx, identity.NewService{Name: "compute", Type: "compute"}); err != nil {
		return fail(err)
	}
	if _, err = id.CreateResource(ctx, identity.Resource{Name: "compute.vm", Service: "compute", AllowInProjects: true, UpLimit: 2}); err != nil {
		return fail(err)
	}
	u, err := id.CreateUser(ctx, identity.NewUser{Username: "demo@example.com", Password: identitytest.Password, Active: true})
	if err != nil {
		return fail(err)
	}
	ns, err := events.StartServer(events.ServerOptions{Dir: dir + "/nats", Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		return fail(err)
	}
	stops = append(stops, ns.Shutdown)
	inproc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return fail(err)
	}
	stops = append(stops, inproc.Close)
	svc, err := api.New(l, id, api.Options{Logger: zerolog.Nop()}).ServeNATS(inproc, api.NATSOptions{})
	if err != nil {
		return fail(err)
	}
	stops = append(stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	return ns.ClientURL(), serviceToken, u.UUID, stop
}

func must(dir string, err error) string {
	if err != nil {
		panic(err)
	}
	return dir
}

// TestREADMENATSExample: the README's Go program calls reserve as
// ExampleNewNATS runs it, word for word.
func TestREADMENATSExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("example_nats_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fn := func(src string) string {
		start := strings.Index(src, "// reserve reserves")
		if start < 0 {
			return ""
		}
		end := strings.Index(src[start:], "\n}\n")
		if end < 0 {
			return ""
		}
		return src[start : start+end+3]
	}
	want := fn(string(self))
	if want == "" || !strings.Contains(string(readme), "```go\n") || fn(string(readme)) != want {
		t.Fatalf("the README's reserve is not ExampleNewNATS's:\n--- README\n%s\n--- example\n%s", fn(string(readme)), want)
	}
}
