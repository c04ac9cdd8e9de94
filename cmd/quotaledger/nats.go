package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// NatsAuth are the credentials for a NATS server, shared by serve (with
// --nats-url) and watch. At most one way is given: a token, a user and
// password, or a credentials file. A URL's own user information
// (nats://user:password@host) also works. None of them is ever logged.
type NatsAuth struct {
	NatsToken    string `name:"nats-token" env:"QUOTALEDGER_NATS_TOKEN" placeholder:"TOKEN" help:"NATS token (prefer the environment variable: a flag shows in the process list)."`
	NatsUser     string `name:"nats-user" env:"QUOTALEDGER_NATS_USER" placeholder:"USER" help:"NATS user, with --nats-password."`
	NatsPassword string `name:"nats-password" env:"QUOTALEDGER_NATS_PASSWORD" placeholder:"PASSWORD" help:"NATS password of --nats-user (prefer the environment variable)."`
	NatsCreds    string `name:"nats-creds" env:"QUOTALEDGER_NATS_CREDS" placeholder:"FILE" help:"NATS credentials file (a user JWT and its nkey seed)."`
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
	return nil
}

// given reports whether some credentials are given.
func (a *NatsAuth) given() bool {
	return a.NatsToken != "" || a.NatsUser != "" || a.NatsCreds != ""
}

// options are the nats.go connect options for these credentials.
func (a *NatsAuth) options() []nats.Option {
	switch {
	case a.NatsToken != "":
		return []nats.Option{nats.Token(a.NatsToken)}
	case a.NatsUser != "":
		return []nats.Option{nats.UserInfo(a.NatsUser, a.NatsPassword)}
	case a.NatsCreds != "":
		return []nats.Option{nats.UserCredentials(a.NatsCreds)}
	}
	return nil
}
