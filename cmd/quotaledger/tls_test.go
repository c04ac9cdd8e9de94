package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/quotaledger/quotaledger/internal/testkit"
)

// testCA is a certificate authority made in the test (crypto/x509).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	file string // its certificate, PEM
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "quotaledger test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), file: filepath.Join(dir, "ca.pem")}
	ca.pool.AddCert(cert)
	if err := os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue writes a certificate of the CA for 127.0.0.1 and localhost (a
// server's, or a client's), with serial, to certFile and keyFile.
func (ca *testCA) issue(t *testing.T, serial int64, client bool, certFile, keyFile string) {
	ca.issueUntil(t, serial, client, certFile, keyFile, time.Now().Add(24*time.Hour).Truncate(time.Second))
}

// issueUntil is issue of a certificate that expires at notAfter.
func (ca *testCA) issueUntil(t *testing.T, serial int64, client bool, certFile, keyFile string, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprintf("test %d", serial)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// notAfter is when the certificate of certFile expires.
func (ca *testCA) notAfter(t *testing.T, certFile string) time.Time {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.NotAfter
}

// healthOn sends GET /healthz on conn, an HTTP/1.1 keep-alive connection,
// and answers its status.
func healthOn(t *testing.T, conn net.Conn, r *bufio.Reader) int {
	t.Helper()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatalf("writing on the open connection: %v", err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading on the open connection: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestServeTLS runs the binary with --tls-cert and --tls-key: the API
// answers over HTTPS with the certificate, to TLS 1.2 and newer only; the
// CLI reaches it with --ca-cert (and not without). A renewed certificate
// written over the files is served after a SIGHUP to new connections,
// while a connection opened before it goes on with no interruption; files
// that cannot be read on a SIGHUP leave the certificate served as it was,
// and the log says why.
func TestServeTLS(t *testing.T) {
	tlsDir := t.TempDir()
	ca := newTestCA(t, tlsDir)
	certFile, keyFile := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	ca.issue(t, 100, false, certFile, keyFile)
	dir := t.TempDir()
	p := spawnServe(t, nil, "--data", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1",
		"--tls-cert", certFile, "--tls-key", keyFile)
	p.waitListening()
	addr := strings.TrimPrefix(p.base, "http://")
	base := "https://" + addr
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz over HTTPS: %d", resp.StatusCode)
		}
		return nil
	})

	// The certificate's expiry, for the alert.
	expiry := func() float64 {
		t.Helper()
		resp, err := hc.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tp expfmt.TextParser
		fams, err := tp.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return metricWithLabel(fams, "quotaledger_tls_certificate_expiry_timestamp_seconds", "", "")
	}
	if got, want := expiry(), float64(ca.notAfter(t, certFile).Unix()); got != want {
		t.Fatalf("quotaledger_tls_certificate_expiry_timestamp_seconds = %v, want %v", got, want)
	}

	// Plain HTTP is not served; TLS 1.1 is refused.
	if code := get(t, p.base+"/readyz", ""); code == http.StatusOK {
		t.Fatalf("plain HTTP on the HTTPS port: %d", code)
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		_ = c.Close()
		t.Fatal("a TLS 1.1 handshake was taken")
	}

	// The CLI, with and without the CA.
	token := readBootstrap(t, dir).Token
	if code, out, errOut := cli(t, nil, "whoami", "--url", base, "--token", token, "--ca-cert", ca.file); code != 0 || !strings.Contains(out, adminUsername) {
		t.Fatalf("whoami --ca-cert: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := cli(t, nil, "whoami", "--url", base, "--token", token); code != 3 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("whoami without --ca-cert: exit %d, want 3 and a word of the certificate\n%s", code, errOut)
	}

	serial := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 100 {
		t.Fatalf("serving the certificate of serial %d, want 100", got)
	}

	// A connection opened before the renewal.
	open, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openR := bufio.NewReader(open)
	if code := healthOn(t, open, openR); code != http.StatusOK {
		t.Fatalf("/healthz on the open connection: %d", code)
	}

	// Renewed, and SIGHUP.
	ca.issueUntil(t, 101, false, certFile, keyFile, time.Now().Add(90*24*time.Hour).Truncate(time.Second))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		if got := serial(); got != 101 {
			return fmt.Errorf("after SIGHUP a new connection gets the certificate of serial %d, want 101", got)
		}
		return nil
	})
	if code := healthOn(t, open, openR); code != http.StatusOK {
		t.Fatalf("/healthz on the connection opened before the renewal: %d", code)
	}
	if got, want := expiry(), float64(ca.notAfter(t, certFile).Unix()); got != want {
		t.Fatalf("after the renewal, quotaledger_tls_certificate_expiry_timestamp_seconds = %v, want %v", got, want)
	}
	if got := open.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 100 {
		t.Fatalf("the open connection's certificate: serial %d, want 100", got)
	}

	// Files that cannot be read: the renewed certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		if !strings.Contains(p.stderr.String(), "TLS certificate not reloaded") {
			return fmt.Errorf("the log does not say the certificate was not reloaded")
		}
		return nil
	})
	if got := serial(); got != 101 {
		t.Fatalf("after a SIGHUP with a bad file, serving serial %d, want 101", got)
	}
	if code := healthOn(t, open, openR); code != http.StatusOK {
		t.Fatalf("/healthz on the open connection, at the end: %d", code)
	}
	select {
	case <-p.exited:
		t.Fatalf("serve exited: %v", p.err)
	default:
	}
}

// TestServeTLSFlags: --tls-cert and --tls-key go together, and a start
// with files that are not a certificate and its key fails, naming them.
func TestServeTLSFlags(t *testing.T) {
	clearEnv(t)
	m, _, _ := newTestMain()
	ctx := t.Context()
	if err := m.ParseFlags(ctx, []string{"serve", "--tls-cert", "c.pem"}); err == nil {
		t.Fatal("--tls-cert without --tls-key taken")
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("no"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, _, _ = newTestMain()
	if err := m.ParseFlags(ctx, []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1",
		"--tls-cert", bad, "--tls-key", bad}); err != nil {
		t.Fatal(err)
	}
	err := m.Run(ctx)
	t.Cleanup(func() { _ = m.Close() })
	if err == nil || !strings.Contains(err.Error(), "--tls-cert "+bad) {
		t.Fatalf("Run with a bad certificate: %v", err)
	}
}

// TestServeHangupWithoutTLS: a SIGHUP (systemctl reload) to serve without
// --tls-cert is logged and changes nothing; it used to end the process.
func TestServeHangupWithoutTLS(t *testing.T) {
	p := startServe(t, nil, "--data", t.TempDir())
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		select {
		case <-p.exited:
			t.Fatalf("serve exited on SIGHUP: %v", p.err)
		default:
		}
		if !strings.Contains(p.stderr.String(), "nothing to reload") {
			return fmt.Errorf("the log does not say SIGHUP had nothing to reload")
		}
		return nil
	})
	p.waitReady()
}
