package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// NatsAuth are the credentials for a NATS server, shared by serve (with
// --nats-url) and watch. At most one way is given: a token, a user and
// password, or a credentials file. A URL's own user information
// (nats://user:password@host) also works. None of them is ever logged.
// With them, TLS: the CA that signed the server's certificate, and a
// client certificate for a server that asks for one.
type NatsAuth struct {
	NatsToken    string `name:"nats-token" env:"QUOTALEDGER_NATS_TOKEN" placeholder:"TOKEN" help:"NATS token (prefer the environment variable: a flag shows in the process list)."`
	NatsUser     string `name:"nats-user" env:"QUOTALEDGER_NATS_USER" placeholder:"USER" help:"NATS user, with --nats-password."`
	NatsPassword string `name:"nats-password" env:"QUOTALEDGER_NATS_PASSWORD" placeholder:"PASSWORD" help:"NATS password of --nats-user (prefer the environment variable)."`
	NatsCreds    string `name:"nats-creds" env:"QUOTALEDGER_NATS_CREDS" placeholder:"FILE" help:"NATS credentials file (a user JWT and its nkey seed)."`
	NatsCA       string `name:"nats-ca" env:"QUOTALEDGER_NATS_CA" placeholder:"FILE" help:"PEM certificate(s) of the CA that signed the NATS server's certificate: the connection is TLS (1.2 and newer), the server's certificate checked against them (default: the system's roots, for a tls:// URL)."`
	NatsCert     string `name:"nats-cert" env:"QUOTALEDGER_NATS_CERT" placeholder:"FILE" help:"PEM client certificate for a NATS server that verifies its clients' (TLS), with --nats-key."`
	NatsKey      string `name:"nats-key" env:"QUOTALEDGER_NATS_KEY" placeholder:"FILE" help:"The PEM private key of --nats-cert."`
}

// Validate checks that at most one kind of credentials is given.
func (a *NatsAuth) Validate() error {
	kinds := 0
	if a.NatsToken != "" {
		kinds++
	}
	if a.NatsUser != "" || a.NatsPassword != "" {
		kinds++
		if a.NatsUser == "" || a.NatsPassword == "" {
			return errors.New("--nats-user and --nats-password go together")
		}
	}
	if a.NatsCreds != "" {
		kinds++
		if _, err := os.Stat(a.NatsCreds); err != nil {
			return fmt.Errorf("--nats-creds: %w", err)
		}
	}
	if kinds > 1 {
		return errors.New("give one of --nats-token, --nats-user with --nats-password, or --nats-creds")
	}
	if (a.NatsCert == "") != (a.NatsKey == "") {
		return errors.New("--nats-cert and --nats-key go together")
	}
	for flag, file := range map[string]string{"--nats-ca": a.NatsCA, "--nats-cert": a.NatsCert, "--nats-key": a.NatsKey} {
		if file == "" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	return nil
}

// tlsGiven reports whether TLS files are given.
func (a *NatsAuth) tlsGiven() bool { return a.NatsCA != "" || a.NatsCert != "" }

// tlsConfig is the TLS configuration of --nats-ca, --nats-cert and
// --nats-key, or nil when none is given (a tls:// URL then checks the
// server against the system's roots).
func (a *NatsAuth) tlsConfig() (*tls.Config, error) {
	if !a.tlsGiven() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.NatsCA != "" {
		data, err := os.ReadFile(a.NatsCA)
		if err != nil {
			return nil, fmt.Errorf("--nats-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("--nats-ca %s: no PEM certificate in it", a.NatsCA)
		}
	}
	if a.NatsCert != "" {
		cert, err := tls.LoadX509KeyPair(a.NatsCert, a.NatsKey)
		if err != nil {
			return nil, fmt.Errorf("--nats-cert %s, --nats-key %s: %w", a.NatsCert, a.NatsKey, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// given reports whether some credentials are given.
func (a *NatsAuth) given() bool {
	return a.NatsToken != "" || a.NatsUser != "" || a.NatsCreds != ""
}

// options are the nats.go connect options for these credentials and TLS.
func (a *NatsAuth) options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.NatsToken != "":
		opts = append(opts, nats.Token(a.NatsToken))
	case a.NatsUser != "":
		opts = append(opts, nats.UserInfo(a.NatsUser, a.NatsPassword))
	case a.NatsCreds != "":
		opts = append(opts, nats.UserCredentials(a.NatsCreds))
	}
	cfg, err := a.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		opts = append(opts, nats.Secure(cfg))
	}
	return opts, nil
}
