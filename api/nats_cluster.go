package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/quotaledger/quotaledger/api/wire"
)

// A node of a cluster serves the micro service's endpoints as it serves
// the HTTP routes (cluster.go): reads from its own state, writes itself
// while it leads, and, while it follows, by forwarding them to the leader
// through the leader's HTTP route (the route the endpoint mirrors, on the
// leader's advertised URL, with the cluster's forwarding headers), then
// answering the NATS request with the leader's answer: its body as it is,
// a refusal with micro's error headers made from its status and
// cloudFault. The forwarded call is an HTTP call like any the node
// forwards: the leader checks it, counts it and refuses it when it no
// longer leads (503, Retry-After) as it does those, and the follower
// counts it in quotaledger_cluster_forwarded_total. With no leader known,
// or a leader that does not answer, the write is answered 503 with a
// Retry-After header, which the client retries for the calls it may
// retry.
//
// The forwarding comes before the token is checked, as over HTTP: a
// follower may not know yet a token the leader made (it reaches the
// follower by the log), and the leader checks it.

// maxForwardedAnswer bounds the body of a leader's answer relayed over
// NATS (a resolve of many serials is the longest).
const maxForwardedAnswer = 64 << 20

// forwardNATS takes a write that reached this node over NATS: nil, nil
// while the node leads (it applies the write); else the leader's answer,
// or an error answered as a fault (503 when there is no leader to ask).
// serial is the commission's serial of an endpoint that takes one, and id
// the request's id, which goes with the forwarded call.
func (cn *clusterNode) forwardNATS(ctx context.Context, ep *natsEndpoint, serial, id string, req *nats.Msg) (*nats.Msg, error) {
	if cn.opts.Node.Leading() {
		return nil, nil
	}
	_, leader, moved := cn.opts.Node.LeaderWatch()
	target, err := url.Parse(leader)
	if leader == "" || err != nil || target.Host == "" {
		cn.forwarded[forwardNoLeader].Inc()
		return nil, &Fault{Kind: "serviceUnavailable", Code: http.StatusServiceUnavailable, RetryAfter: retryAfterLeader,
			Message: "the cluster has no leader at the moment (one is being elected): retry"}
	}
	path := ep.route.Path
	if serial != "" {
		path = strings.Replace(path, "{serial}", url.PathEscape(serial), 1)
	}
	ctx, cancel := context.WithTimeout(ctx, cn.opts.ForwardTimeout)
	defer cancel()
	ctx, answered := watchLeader(ctx, moved)
	hr, err := http.NewRequestWithContext(ctx, ep.route.Method, strings.TrimSuffix(leader, "/")+path, bytes.NewReader(req.Data))
	if err != nil {
		return nil, err
	}
	for _, k := range []string{wire.TokenHeader, "Authorization", wire.IdempotencyHeader} {
		if v := natsHeader(req.Header, k); v != "" {
			hr.Header.Set(k, v)
		}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Request-Id", id)
	hr.Header.Set(HeaderForwarded, cn.opts.Name)
	if cn.opts.Secret != "" {
		hr.Header.Set(headerForwardKey, cn.opts.Secret)
	}
	resp, err := cn.proxy.Transport.RoundTrip(hr)
	var body []byte
	if err == nil {
		answered()
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxForwardedAnswer))
		_ = resp.Body.Close()
	}
	answered()
	if err != nil && errors.Is(context.Cause(ctx), errLeaderMoved) {
		cn.forwarded[forwardMoved].Inc()
		cn.s.log.Warn().Err(errLeaderMoved).Str("wire", "nats").Str("leader", leader).Str("request_id", id).Msg("forwarding a write to the leader")
		return nil, leaderMovedFault(leader)
	}
	if err != nil {
		cn.forwarded[forwardUnreachable].Inc()
		cn.s.log.Warn().Err(err).Str("wire", "nats").Str("leader", leader).Str("request_id", id).Msg("forwarding a write to the leader")
		return nil, &Fault{Kind: "serviceUnavailable", Code: http.StatusServiceUnavailable, RetryAfter: retryAfterLeader,
			Message: "the leader did not answer the forwarded call; if it reached the leader its outcome is unknown: retry it (an issue with the same idempotency key)"}
	}
	cn.forwarded[forwardAnswered].Inc()
	return natsAnswerOf(resp, body), nil
}

// natsAnswerOf is the NATS answer of an HTTP answer of the route an
// endpoint mirrors: the body as it is; the request id, the applied
// sequence and Retry-After; a refusal (4xx, 5xx) with micro's error
// headers, the code its status and the error its cloudFault's kind and
// message.
func natsAnswerOf(resp *http.Response, body []byte) *nats.Msg {
	m := &nats.Msg{Header: nats.Header{}, Data: body}
	for _, k := range []string{wire.RequestIDHeader, HeaderApplied, "Retry-After"} {
		if v := resp.Header.Get(k); v != "" {
			m.Header.Set(k, v)
		}
	}
	if resp.StatusCode < 400 {
		return m
	}
	desc := http.StatusText(resp.StatusCode)
	var fault map[string]struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &fault) == nil && len(fault) == 1 {
		for kind, f := range fault {
			desc = kind + ": " + f.Message
		}
	}
	m.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(resp.StatusCode))
	m.Header.Set(micro.ErrorHeader, headerValue(desc))
	return m
}
