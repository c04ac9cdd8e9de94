package testkit

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamMsg is one message of a JetStream stream, as ReadStream reads it.
type StreamMsg struct {
	Seq     uint64 // the stream sequence
	Subject string
	MsgID   string // the Nats-Msg-Id header
	Data    []byte
}

// ReadStream returns the messages of the stream name on the NATS server
// at url, in order, as the stream is when it is called: up to its last
// sequence then. There are none if the stream does not exist (yet). It
// fails the test if the server cannot be reached, or if a pull comes back
// empty before the last message (each pull waits up to ten seconds). Each
// request to the JetStream API waits up to Patience: for a stream on one
// server; ReadStreamWithin reads a replicated one.
func ReadStream(tb TB, url, name string) []StreamMsg {
	tb.Helper()
	return ReadStreamWithin(tb, url, name, Patience)
}

// ReadStreamWithin is ReadStream with each request to the JetStream API
// (the stream's lookup and state) failing the read after within. A
// replicated stream's servers answer no such request while the stream's
// Raft group has no leader (its leader's server went, or every server
// restarted): the request is dropped, not kept until a leader is elected,
// and its caller waits for its deadline even if the stream leads again a
// second later. A caller that reads a replicated stream reads again after
// a failed read (the cluster tests' readStreamAgain), with a within that
// leaves room for several attempts in its patience.
func ReadStreamWithin(tb TB, url, name string, within time.Duration) []StreamMsg {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatalf("connect to NATS at %s: %v", url, err)
		return nil
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		tb.Fatalf("stream %s: %v", name, err)
		return nil
	}
	ctx, cancel = context.WithTimeout(context.Background(), within)
	defer cancel()
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatalf("stream %s: %v", name, err)
		return nil
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		tb.Fatalf("stream %s: consumer: %v", name, err)
		return nil
	}
	out := make([]StreamMsg, 0, info.State.Msgs)
	for {
		// As many as the stream holds still, so that a pull does not wait
		// for more.
		batch, err := cons.Fetch(min(max(int(info.State.Msgs)-len(out), 1), 1000), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			tb.Fatalf("stream %s: fetch: %v", name, err)
			return out
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				tb.Fatalf("stream %s: message metadata: %v", name, err)
				return out
			}
			if seq := md.Sequence.Stream; seq <= info.State.LastSeq {
				out = append(out, StreamMsg{Seq: seq, Subject: m.Subject(),
					MsgID: m.Headers().Get(jetstream.MsgIDHeader), Data: m.Data()})
			}
			done = done || md.Sequence.Stream >= info.State.LastSeq
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			tb.Fatalf("stream %s: fetch: %v", name, err)
			return out
		}
		if done {
			return out
		}
		if n == 0 {
			tb.Fatalf("stream %s: read %d messages of up to sequence %d, then nothing", name, len(out), info.State.LastSeq)
			return out
		}
	}
}
