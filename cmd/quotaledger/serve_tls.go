package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TLSFlags are serve's TLS flags: the API served over HTTPS, TLS 1.2 and
// newer, with a certificate and key read again on SIGHUP.
type TLSFlags struct {
	TLSCert string `name:"tls-cert" env:"QUOTALEDGER_TLS_CERT" placeholder:"FILE" help:"Serve the API over HTTPS (TLS 1.2 and newer) with this PEM certificate (chain: the server's first), with --tls-key. SIGHUP reads both files again, for a renewed certificate: connections open stay open, new ones get the new certificate; if they cannot be read the previous one is kept and the log says why (default: plain HTTP)."`
	TLSKey  string `name:"tls-key" env:"QUOTALEDGER_TLS_KEY" placeholder:"FILE" help:"The PEM private key of --tls-cert."`
}

// Validate checks that the certificate and its key come together.
func (f *TLSFlags) Validate() error {
	if (f.TLSCert == "") != (f.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// scheme is the API's URL scheme.
func (f *TLSFlags) scheme() string {
	if f.TLSCert != "" {
		return "https"
	}
	return "http"
}

// certHolder holds the server's certificate, which a SIGHUP replaces:
// tls.Config.GetCertificate asks it for each handshake, so connections
// already open keep theirs and new ones get the new one.
type certHolder struct {
	certFile, keyFile string
	log               zerolog.Logger
	cert              atomic.Pointer[tls.Certificate]
}

// newCertHolder reads the certificate and key, or says why it cannot.
func newCertHolder(certFile, keyFile string, log zerolog.Logger) (*certHolder, error) {
	h := &certHolder{certFile: certFile, keyFile: keyFile, log: log}
	if err := h.load(); err != nil {
		return nil, err
	}
	return h, nil
}

// load reads the files and, if they make a certificate, serves it.
func (h *certHolder) load() error {
	cert, err := tls.LoadX509KeyPair(h.certFile, h.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert %s, --tls-key %s: %w", h.certFile, h.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("--tls-cert %s: %w", h.certFile, err)
	}
	cert.Leaf = leaf
	h.cert.Store(&cert)
	h.log.Info().Str("subject", leaf.Subject.String()).Strs("dns_names", leaf.DNSNames).
		Time("not_after", leaf.NotAfter).Msg("TLS certificate loaded")
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (h *certHolder) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

// expiryGauge is quotaledger_tls_certificate_expiry_timestamp_seconds:
// when the certificate served now expires (docs/alerts.yml warns two
// weeks before).
func (h *certHolder) expiryGauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "quotaledger",
		Name: "tls_certificate_expiry_timestamp_seconds",
		Help: "When the API's TLS certificate (--tls-cert, as last loaded) expires, in seconds since the epoch."},
		func() float64 { return float64(h.cert.Load().Leaf.NotAfter.Unix()) })
}

// tlsConfig is the API's TLS configuration: TLS 1.2 and newer (Go's
// cipher suites for 1.2 are the AEAD ones with forward secrecy by default).
func (h *certHolder) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: h.getCertificate}
}

// watchHangup handles SIGHUP until stop is closed: the TLS files are read
// again (certs nil: there is nothing to reload, which the log says). A
// SIGHUP would otherwise end the process: systemctl reload sends one.
func watchHangup(certs *certHolder, log zerolog.Logger, stop <-chan struct{}) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-stop:
				return
			case <-hup:
				if certs == nil {
					log.Info().Msg("SIGHUP: no --tls-cert, nothing to reload")
					continue
				}
				if err := certs.load(); err != nil {
					log.Error().Err(err).Msg("SIGHUP: TLS certificate not reloaded, the previous one is still served")
				}
			}
		}
	}()
}
