package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// natsTLSServer is a real nats-server, started in the test, that takes
// only TLS connections with a client certificate of ca, and only users of
// its one account (operator mode: a credentials file, a user JWT signed by
// the account and its nkey seed), with JetStream.
type natsTLSServer struct {
	url   string // tls://127.0.0.1:port
	creds string // a user's credentials file
}

func startNATSTLS(t *testing.T, ca *testCA, dir string) *natsTLSServer {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The operator, its account (JetStream allowed), a user of the account.
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	// JetStream in operator mode needs a system account.
	skp, err := nkeys.CreateAccount()
	must(err)
	spub, err := skp.PublicKey()
	must(err)
	sjwt, err := jwt.NewAccountClaims(spub).Encode(okp)
	must(err)
	ocl := jwt.NewOperatorClaims(opub)
	ocl.SystemAccount = spub
	ojwt, err := ocl.Encode(okp)
	must(err)
	oc, err := jwt.DecodeOperatorClaims(ojwt)
	must(err)
	akp, err := nkeys.CreateAccount()
	must(err)
	apub, err := akp.PublicKey()
	must(err)
	ac := jwt.NewAccountClaims(apub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	ajwt, err := ac.Encode(okp)
	must(err)
	ukp, err := nkeys.CreateUser()
	must(err)
	upub, err := ukp.PublicKey()
	must(err)
	useed, err := ukp.Seed()
	must(err)
	ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
	must(err)
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	must(err)
	n := &natsTLSServer{creds: filepath.Join(dir, "user.creds")}
	must(os.WriteFile(n.creds, creds, 0o600))

	resolver := &natsserver.MemAccResolver{}
	must(resolver.Store(apub, ajwt))
	must(resolver.Store(spub, sjwt))
	certFile, keyFile := filepath.Join(dir, "nats.pem"), filepath.Join(dir, "nats-key.pem")
	ca.issue(t, 200, false, certFile, keyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	must(err)
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "js"),
		NoLog: true, NoSigs: true, TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver, SystemAccount: spub,
		TLS: true, TLSVerify: true, TLSTimeout: 5,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}}
	ns, err := natsserver.NewServer(opts)
	must(err)
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(testkit.Patience) {
		t.Fatal("nats-server not ready")
	}
	n.url = fmt.Sprintf("tls://127.0.0.1:%d", ns.Addr().(*net.TCPAddr).Port)
	return n
}

// streamMsgs is how many messages the events stream of the server holds,
// read with the user's credentials and a client certificate.
func (n *natsTLSServer) streamMsgs(t *testing.T, ca *testCA, certFile, keyFile string) (uint64, error) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.url, nats.UserCredentials(n.creds),
		nats.Secure(&tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("the test's own connection to the NATS server: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// microPing asks the server for the micro service ($SRV.PING.quotaledger)
// with the user's credentials and a client certificate.
func (n *natsTLSServer) microPing(t *testing.T, ca *testCA, certFile, keyFile string) error {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.url, nats.UserCredentials(n.creds),
		nats.Secure(&tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("the test's own connection to the NATS server: %v", err)
	}
	defer nc.Close()
	m, err := nc.Request("$SRV.PING."+wire.NATSService, nil, 5*time.Second)
	if err != nil {
		return fmt.Errorf("$SRV.PING.%s: %w", wire.NATSService, err)
	}
	if !strings.Contains(string(m.Data), `"name":"`+wire.NATSService+`"`) {
		t.Fatalf("$SRV.PING.%s: %s", wire.NATSService, m.Data)
	}
	return nil
}

// TestServeExternalNATSTLS runs the binary against a real nats-server that
// takes only TLS with a client certificate and a credentials file: with
// --nats-ca, --nats-cert, --nats-key and --nats-creds the events reach the
// stream; without the client certificate, or without the credentials, the
// relay cannot connect and says so, and nothing is published; with them
// the micro service answers on that server too.
func TestServeExternalNATSTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	n := startNATSTLS(t, ca, dir)
	clientCert, clientKey := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	ca.issue(t, 300, true, clientCert, clientKey)

	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"no client certificate", []string{"--nats-ca", ca.file, "--nats-creds", n.creds}, false},
		{"no credentials", []string{"--nats-ca", ca.file, "--nats-cert", clientCert, "--nats-key", clientKey}, false},
		{"no CA", []string{"--nats-cert", clientCert, "--nats-key", clientKey, "--nats-creds", n.creds}, false},
		{"all", []string{"--nats-ca", ca.file, "--nats-cert", clientCert, "--nats-key", clientKey, "--nats-creds", n.creds}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := spawnServe(t, nil, append([]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-url", n.url}, tc.args...)...)
			p.waitListening()
			if !tc.ok {
				testkit.CheckFor(t, testkit.Patience, poll, func() error {
					if !strings.Contains(p.stderr.String(), "event relay: NATS unavailable") {
						return fmt.Errorf("the relay does not say it cannot connect")
					}
					return nil
				})
				if msgs, err := n.streamMsgs(t, ca, clientCert, clientKey); err == nil && msgs > 0 {
					t.Fatalf("%d events published by a relay without %s", msgs, tc.name)
				}
				return
			}
			p.waitReady()
			testkit.CheckFor(t, testkit.Patience, poll, func() error {
				msgs, err := n.streamMsgs(t, ca, clientCert, clientKey)
				if err != nil || msgs == 0 {
					return fmt.Errorf("the events stream: %d messages, %v", msgs, err)
				}
				return nil
			})
			if strings.Contains(p.stderr.String(), "NATS unavailable") {
				t.Fatalf("the relay could not connect at first:\n%s", grepLines(p.stderr.String(), "NATS"))
			}
			// The micro service connects with the same flags.
			testkit.CheckFor(t, testkit.Patience, poll, func() error { return n.microPing(t, ca, clientCert, clientKey) })
		})
	}
}
