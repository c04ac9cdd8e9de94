package events

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// TestAsyncConnStream: bytes written through an asyncConn reach the other
// end of its pipe whole and in order, and the other end's reach its
// Reads, with writes of every size (past maxQueued, which makes a writer
// wait) going both ways at once.
func TestAsyncConnStream(t *testing.T) {
	a, b := net.Pipe()
	c := newAsyncConn(a)
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	data := func(n int) []byte {
		out := make([]byte, n)
		for i := range out {
			out[i] = byte(rng.Uint32())
		}
		return out
	}
	sizes := []int{1, 7, 512, 64 << 10, 1 << 20, maxQueued + 12345, 3, 100 << 10}
	var out, back [][]byte
	for _, n := range sizes {
		out = append(out, data(n))
		back = append(back, data(n))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	send := func(w io.Writer, chunks [][]byte) {
		defer wg.Done()
		for _, p := range chunks {
			if n, err := w.Write(p); err != nil || n != len(p) {
				errs <- err
				return
			}
		}
	}
	recv := func(r io.Reader, chunks [][]byte) {
		defer wg.Done()
		want := bytes.Join(chunks, nil)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil {
			errs <- err
			return
		}
		if !bytes.Equal(got, want) {
			errs <- errors.New("the bytes read are not the bytes written")
		}
	}
	wg.Add(4)
	go send(c, out)
	go recv(b, out)
	go send(b, back)
	go recv(c, back)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestAsyncConnDeadlineAndClose: a Read waits until its deadline, then
// fails with os.ErrDeadlineExceeded; what was queued before Close reaches
// the other end; after Close, writes and reads fail.
func TestAsyncConnDeadlineAndClose(t *testing.T) {
	a, b := net.Pipe()
	c := newAsyncConn(a)
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 8)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a read past its deadline: %d, %v", n, err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	if _, err := c.Write([]byte("queued before close")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if all := <-got; string(all) != "queued before close" {
		t.Fatalf("the other end read %q", all)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("a write after Close succeeded")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a read after Close succeeded")
	}
}

// TestInProcessRequests: many requests at once between two connections in
// process (the micro service's case): every one answered with its own
// reply.
func TestInProcessRequests(t *testing.T) {
	srv, err := StartServer(ServerOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	conn := func() *nats.Conn {
		nc, err := nats.Connect("", nats.InProcessServer(srv))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	responder, requester := conn(), conn()
	if _, err := responder.Subscribe("echo", func(m *nats.Msg) {
		go func() { _ = m.Respond(append([]byte("re: "), m.Data...)) }()
	}); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				body := []byte{byte(g), byte(i)}
				m, err := requester.RequestWithContext(ctx, "echo", body)
				if err != nil || !bytes.Equal(m.Data, append([]byte("re: "), body...)) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a request: %v", err)
	}
}
