package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/api/wire"
)

// The service half of the API over NATS (DESIGN.md §12): serve runs the
// micro service quotaledger on the NATS its events go to, on a connection
// of its own.

// microService is the running micro service and its connection.
type microService struct {
	nc  *nats.Conn
	svc *api.NATSService
}

// startMicro serves the micro service of h on the NATS of the events: the
// embedded server, connected in process, or --nats-url with its
// credentials. An external server that is away does not stop the start:
// the connection keeps trying, and the endpoints are served once it is
// there (as the relay publishes once it is).
//
// Every node of a cluster (DESIGN.md §11) serves the endpoints, in one
// queue group on the nodes' NATS: a follower forwards the writes it takes
// to the leader through the leader's HTTP route, or answers 503 with
// Retry-After when it knows no leader (api/nats_cluster.go).
func (s *server) startMicro(c *ServeCmd, h *api.Server) error {
	opts := []nats.Option{
		nats.Name("quotaledger micro service"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn().Err(err).Msg("NATS micro service: disconnected, reconnecting")
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { s.log.Info().Msg("NATS micro service: reconnected") }),
	}
	url := c.NatsURL
	if s.nats != nil {
		url = ""
		opts = append(opts, nats.InProcessServer(s.nats))
	} else {
		auth, err := c.NatsAuth.options() // credentials and TLS, as the relay's
		if err != nil {
			return fmt.Errorf("NATS micro service: %w", err)
		}
		opts = append(opts, auth...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("NATS micro service: %w", err)
	}
	svc, err := h.ServeNATS(nc, api.NATSOptions{})
	if err != nil {
		nc.Close()
		return err
	}
	s.micro = &microService{nc: nc, svc: svc}
	s.log.Info().Str("service", wire.NATSService).Str("prefix", wire.NATSPrefix).Bool("in_process", s.nats != nil).
		Msg("NATS micro service started")
	return nil
}

// stopMicro stops the micro service once its calls in flight are answered
// (up to the shutdown timeout), and closes its connection.
func (s *server) stopMicro() {
	if s.micro == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	if err := s.micro.svc.Stop(ctx); err != nil {
		s.log.Warn().Err(err).Msg("stopping the NATS micro service")
	}
	s.micro.nc.Close()
	s.micro = nil
}
