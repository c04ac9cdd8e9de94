package main

import (
	"fmt"
	"strings"

	"github.com/quotaledger/quotaledger/api/client"
)

// ServiceCmd manages services (admin).
type ServiceCmd struct {
	ClientFlags `embed:""`
	Create      ServiceCreateCmd `cmd:"" help:"Register a service; its token is shown once."`
	List        ServiceListCmd   `cmd:"" help:"List the services."`
	Renew       ServiceRenewCmd  `cmd:"" help:"Give a service a new token (the old one stops working)."`
}

// ServiceCreateCmd registers a service.
type ServiceCreateCmd struct {
	Name     string   `arg:"" help:"The service's name."`
	Type     string   `name:"type" required:"" help:"Its type (compute, storage, ...)."`
	Endpoint []string `name:"endpoint" help:"A public URL (repeatable)."`
	Version  string   `name:"version" help:"The endpoints' versionId."`
	Expires  string   `name:"expires" help:"When its token expires: a duration or an RFC 3339 time (default: never)."`
}

// ServiceListCmd lists services.
type ServiceListCmd struct{}

// ServiceRenewCmd renews a token.
type ServiceRenewCmd struct {
	Name    string `arg:"" help:"The service's name."`
	Expires string `name:"expires" help:"When the new token expires: a duration or an RFC 3339 time (default: never)."`
}

func serviceTable(e *cliEnv, ss ...client.Service) error {
	tw := e.table("NAME", "TYPE", "ENDPOINTS", "TOKEN ID", "CREATED")
	for _, s := range ss {
		eps := make([]string, len(s.Endpoints))
		for i, ep := range s.Endpoints {
			eps[i] = ep.PublicURL
		}
		row(tw, s.Name, s.Type, strings.Join(eps, ","), s.TokenID, fmtTime(s.Created))
	}
	return tw.Flush()
}

func (e *cliEnv) showServiceToken(s *client.Service) error {
	return e.show(s, func() error {
		if err := serviceTable(e, *s); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "token (shown once): %s\n", s.Token)
		return nil
	})
}

// Run registers the service and shows its token once.
func (cmd *ServiceCreateCmd) Run(e *cliEnv) error {
	exp, err := parseExpiry(cmd.Expires)
	if err != nil {
		return err
	}
	ns := client.NewService{Name: cmd.Name, Type: cmd.Type}
	for _, u := range cmd.Endpoint {
		ns.Endpoints = append(ns.Endpoints, client.ServiceEndpoint{PublicURL: u, VersionID: cmd.Version})
	}
	if !exp.IsZero() {
		ns.TokenExpires = &exp
	}
	s, err := e.c.CreateService(e.ctx, ns)
	if err != nil {
		return err
	}
	return e.showServiceToken(s)
}

// Run lists the services.
func (cmd *ServiceListCmd) Run(e *cliEnv) error {
	ss, err := allPages(func(po client.PageOptions) (*client.Page[client.Service], error) {
		return e.c.FindServices(e.ctx, client.ServiceFilter{PageOptions: po})
	})
	if err != nil {
		return err
	}
	return e.show(ss, func() error { return serviceTable(e, ss...) })
}

// Run gives the service a new token and shows it once.
func (cmd *ServiceRenewCmd) Run(e *cliEnv) error {
	exp, err := parseExpiry(cmd.Expires)
	if err != nil {
		return err
	}
	s, err := e.c.RenewServiceToken(e.ctx, cmd.Name, exp)
	if err != nil {
		return err
	}
	return e.showServiceToken(s)
}
