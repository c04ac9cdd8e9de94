package client_test

import (
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestRootCAs: a server with a certificate of its own CA (httptest's) is
// refused by a client with the system's roots and reached by one given
// the CA's certificate with Options.RootCAs (read by CertPool).
func TestRootCAs(t *testing.T) {
	l, id := identitytest.OpenStores(t, ledger.Options{}, identity.Options{})
	p := identitytest.AddPrincipals(t, id)
	srv := httptest.NewUnstartedServer(api.New(l, id, api.Options{Logger: zerolog.Nop()}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx := t.Context()

	plain, err := client.New(srv.URL, p.UserToken, client.Options{NoTokenPickup: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.GetUserInfo(ctx, false); err == nil {
		t.Fatal("a server of an unknown CA reached with the system's roots")
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := client.CertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.URL, p.UserToken, client.Options{NoTokenPickup: true, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.GetUserInfo(ctx, false); err != nil || info.UUID == "" {
		t.Fatalf("GetUserInfo over TLS with the CA: %+v %v", info, err)
	}

	// A file without a certificate; RootCAs with HTTPClient.
	if err := os.WriteFile(caFile, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CertPool(caFile); err == nil {
		t.Fatal("CertPool of a file without a certificate: no error")
	}
	if _, err := client.New(srv.URL, "", client.Options{RootCAs: pool, HTTPClient: srv.Client()}); err == nil ||
		errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New with RootCAs and HTTPClient: %v", err)
	}
}
