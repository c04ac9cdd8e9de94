package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/events"
)

// WatchCmd is `quotaledger watch`: it follows the event stream and prints
// one line per event until interrupted.
type WatchCmd struct {
	NatsURL   string   `name:"nats-url" default:"nats://127.0.0.1:4222" env:"QUOTALEDGER_NATS_URL" placeholder:"URL" help:"The NATS server of the stream (default ${default}, where serve's embedded server listens)."`
	Subject   []string `name:"subject" sep:"none" placeholder:"SUBJECT" help:"Only events of this subject (NATS wildcards * and > work; repeat for more), e.g. 'quota.commission.>' or 'identity.user.*'. Default: all."`
	FromStart bool     `name:"from-start" xor:"start" help:"Print the whole stream first, then follow it."`
	Since     string   `name:"since" xor:"start" placeholder:"TIME" help:"Print the events from TIME on (RFC 3339, e.g. 2026-11-23T15:04:05Z, or a duration back from now, e.g. 1h), then follow."`
	JSON      bool     `name:"json" help:"Print each event's payload as it is, one JSON object a line (for programs)."`

	NatsAuth `embed:""`
}

// Help is the detail of `watch --help`.
func (c *WatchCmd) Help() string {
	return `Follows the stream ` + events.StreamName + ` with an ephemeral ordered consumer and
prints one line per event as it comes, until interrupted (SIGINT, SIGTERM).
By default it starts with the next event; --from-start or --since replay the
stream first. If the server or the stream is not there yet, it waits for
them.

A line for people reads
  TIME TYPE serial=N client=C name="..." reason="..." HOLDER/SOURCE/RESOURCE +QTY (limit L, usage U, pending P) ... data={...}
with only the parts the event has; --json prints the payloads themselves
(the README's "Events" section describes them).`
}

// Validate checks --since, the subjects and the credentials.
func (c *WatchCmd) Validate() error {
	if err := checkURL(c.NatsURL, "nats", "tls", "ws", "wss"); err != nil {
		return fmt.Errorf("--nats-url: %w", err)
	}
	if c.Since != "" {
		if _, err := parseSince(c.Since, time.Now()); err != nil {
			return err
		}
	}
	for _, s := range c.Subject {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return fmt.Errorf("--subject %q is not a NATS subject", s)
		}
	}
	return c.NatsAuth.Validate()
}

// parseSince reads --since: an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q is neither an RFC 3339 time (2026-11-23T15:04:05Z) nor a duration (1h30m)", s)
}

// watchRetry is how long watch waits between attempts to find the stream.
const watchRetry = time.Second

// Run follows the stream until ctx is done (nil) or the stream cannot be
// followed (an error).
func (c *WatchCmd) Run(ctx context.Context, s *streams) error {
	stdout, stderr := s.Stdout, s.Stderr
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: c.Subject, DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case c.FromStart:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case c.Since != "":
		t, err := parseSince(c.Since, time.Now())
		if err != nil {
			return err
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}

	auth, err := c.NatsAuth.options()
	if err != nil {
		return err
	}
	opts := append([]nats.Option{nats.Name("quotaledger watch"), nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1), nats.ReconnectWait(watchRetry)}, auth...)
	nc, err := nats.Connect(c.NatsURL, opts...)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	// Wait for the server and the stream: watch may start before serve.
	var stream jetstream.Stream
	for waited := false; ; {
		if nc.IsConnected() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			stream, err = js.Stream(sctx, events.StreamName)
			cancel()
			if err == nil {
				break
			}
		} else {
			err = nats.ErrNoServers
		}
		if ctx.Err() != nil {
			return nil
		}
		if !waited {
			fmt.Fprintf(stderr, "quotaledger watch: waiting for the stream %s at %s: %v\n",
				events.StreamName, redactURL(c.NatsURL), err)
			waited = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchRetry):
		}
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consumer on %s: %w", events.StreamName, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consumer on %s: %w", events.StreamName, err)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-stopped:
		}
	}()
	defer it.Stop()

	w := bufio.NewWriter(stdout)
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return w.Flush()
			}
			_ = w.Flush()
			return fmt.Errorf("reading %s: %w", events.StreamName, err)
		}
		if c.JSON {
			_, _ = w.Write(jsonLine(msg.Data()))
			_ = w.WriteByte('\n')
		} else {
			_, _ = w.WriteString(formatEvent(msg.Subject(), msg.Data()))
			_ = w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// eventPayload is what watch reads of an event's JSON (README "Events").
type eventPayload struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Time     string           `json:"time"`
	Serial   uint64           `json:"serial"`
	Client   string           `json:"client"`
	Name     string           `json:"name"`
	Reason   string           `json:"reason"`
	Holdings []payloadHolding `json:"holdings"`
	Data     json.RawMessage  `json:"data"`
}

type payloadHolding struct {
	Holder   string  `json:"holder"`
	Source   *string `json:"source"`
	Resource string  `json:"resource"`
	Quantity int64   `json:"quantity"`
	Limit    int64   `json:"limit"`
	Usage    int64   `json:"usage"`
	Pending  int64   `json:"pending"`
}

// formatEvent is the line for people of one event:
//
//	2026-11-23T15:04:05Z quotaledger.v1.commission.accepted serial=12 client=cyclades user:U/project:P/cyclades.vm +1 (limit 2, usage 1, pending 0)
//
// with only the parts the event has. A payload it cannot read is shown as
// its subject and the payload itself.
func formatEvent(subject string, data []byte) string {
	var p eventPayload
	if err := json.Unmarshal(data, &p); err != nil || p.Type == "" {
		return printable(subject) + " " + printable(string(bytes.TrimSpace(data)))
	}
	var b strings.Builder
	if t, err := time.Parse(time.RFC3339Nano, p.Time); err == nil {
		b.WriteString(t.UTC().Format(time.RFC3339))
	} else {
		b.WriteString(printable(p.Time))
	}
	b.WriteByte(' ')
	b.WriteString(printable(p.Type))
	if p.Serial != 0 {
		b.WriteString(" serial=" + strconv.FormatUint(p.Serial, 10))
	}
	if p.Client != "" {
		b.WriteString(" client=" + printable(p.Client))
	}
	if p.Name != "" {
		b.WriteString(" name=" + strconv.Quote(p.Name))
	}
	if p.Reason != "" {
		b.WriteString(" reason=" + strconv.Quote(p.Reason))
	}
	deleted := strings.HasSuffix(p.Type, "holding.deleted")
	for _, h := range p.Holdings {
		source := "null"
		if h.Source != nil {
			source = *h.Source
		}
		b.WriteString(" " + printable(h.Holder+"/"+source+"/"+h.Resource))
		if deleted {
			continue
		}
		if h.Quantity != 0 {
			fmt.Fprintf(&b, " %+d", h.Quantity)
		}
		fmt.Fprintf(&b, " (limit %d, usage %d, pending %d)", h.Limit, h.Usage, h.Pending)
	}
	if len(p.Data) > 0 && !bytes.Equal(p.Data, []byte("null")) {
		var buf bytes.Buffer
		if json.Compact(&buf, p.Data) == nil {
			b.WriteString(" data=" + printable(buf.String()))
		} else {
			b.WriteString(" data=" + printable(string(p.Data)))
		}
	}
	return b.String()
}

// printable is s as it is when it is valid UTF-8 of printable characters
// and spaces, and quoted (Go syntax) otherwise: a payload's text cannot
// break watch's one line an event, nor put control characters on the
// terminal.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// jsonLine is a payload as watch --json prints it: one JSON value on one
// line, the payload compacted, or, if it is not JSON, the payload as a JSON
// string.
func jsonLine(data []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, data) == nil && utf8.Valid(buf.Bytes()) {
		return buf.Bytes()
	}
	s, _ := json.Marshal(string(data))
	return s
}
