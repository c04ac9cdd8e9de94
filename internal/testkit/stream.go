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

// CutStream makes the stream name on the NATS server at url what its
// servers keep after losing its last messages (a power loss of them all
// before they synced): the stream is made again, of the same
// configuration, with its first keep messages at the same sequences and
// with the same headers. The stream must start at sequence 1 and hold
// more than keep messages, with none deleted.
func CutStream(tb TB, url, name string, keep int) {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatalf("connect to NATS at %s: %v", url, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		tb.Fatalf("stream %s: %v", name, err)
		return
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatalf("stream %s: %v", name, err)
		return
	}
	if s := info.State; s.FirstSeq != 1 || s.Msgs != s.LastSeq || s.Msgs <= uint64(keep) {
		tb.Fatalf("stream %s: cannot keep the first %d messages of %+v", name, keep, s)
		return
	}
	msgs := make([]*jetstream.RawStreamMsg, keep)
	for i := range msgs {
		if msgs[i], err = st.GetMsg(ctx, uint64(i+1)); err != nil {
			tb.Fatalf("stream %s: message %d: %v", name, i+1, err)
			return
		}
	}
	if err := js.DeleteStream(ctx, name); err != nil {
		tb.Fatalf("stream %s: delete: %v", name, err)
		return
	}
	if _, err := js.CreateStream(ctx, info.Config); err != nil {
		tb.Fatalf("stream %s: create again: %v", name, err)
		return
	}
	for i, m := range msgs {
		msg := &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}
		if ack, err := js.PublishMsg(ctx, msg); err != nil || ack.Sequence != uint64(i+1) {
			tb.Fatalf("stream %s: message %d made again: %+v, %v", name, i+1, ack, err)
			return
		}
	}
}
