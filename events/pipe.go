package events

import (
	"net"
	"os"
	"sync"
	"time"
)

// The embedded server's in-process connection is a net.Pipe: a write
// returns only once the server has read all of it, and the server reads a
// buffer at a time, handling each before it reads the next. nats.go
// flushes its buffer holding the connection's lock, so over a bare pipe
// every publisher of the connection (each write of the micro service
// answering, in its own goroutine) waits while the server routes what was
// flushed before: the writes come to the ledger one or two at a time
// instead of in batches (bench/pinned.sh: 1.5 calls per synced batch over
// the bare pipe, 8 to 10 over loopback TCP). asyncConn takes the writes off
// the caller as a socket's send buffer does: a write is queued and a
// goroutine of the connection's hands the queue to the pipe; and another
// reads the pipe as it comes, so that the server's writes do not wait for
// the client's reads either.

// maxQueued bounds the bytes queued on an asyncConn: past it a write waits
// (the server is slower than the client writes).
const maxQueued = 8 << 20

// closeDrain bounds how long Close waits for the queued bytes to be
// written before it closes the pipe.
const closeDrain = 5 * time.Second

// asyncConn is a net.Conn over conn (a pipe) whose writes are queued and
// written to conn by a goroutine of its own, and whose reads take what
// another goroutine read from conn.
type asyncConn struct {
	net.Conn
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []byte
	spare   []byte
	err     error // the pipe's write error, or net.ErrClosed once closed
	closing bool
	done    chan struct{} // closed when the writer has returned

	// The read side: what the reader read from the pipe and Read has not
	// taken, the pipe's read error, and Read's deadline.
	in       []byte
	inErr    error
	deadline time.Time
	timer    *time.Timer
}

func newAsyncConn(conn net.Conn) *asyncConn {
	c := &asyncConn{Conn: conn, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.writer()
	go c.reader()
	return c
}

// reader reads the pipe into in (up to maxQueued bytes) until it fails.
func (c *asyncConn) reader() {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Conn.Read(buf)
		c.mu.Lock()
		c.in = append(c.in, buf[:n]...)
		if err != nil && c.inErr == nil {
			c.inErr = err
		}
		c.cond.Broadcast()
		for c.inErr == nil && len(c.in) >= maxQueued {
			c.cond.Wait()
		}
		stop := c.inErr != nil
		c.mu.Unlock()
		if stop {
			return
		}
	}
}

// Read takes what the reader read, waiting for some until the read
// deadline.
func (c *asyncConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.in) == 0 && c.inErr == nil {
		if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		c.cond.Wait()
	}
	if len(c.in) == 0 {
		return 0, c.inErr
	}
	n := copy(b, c.in)
	c.in = c.in[n:]
	if len(c.in) == 0 {
		c.in = nil
	}
	c.cond.Broadcast() // the reader, if it waits for room
	return n, nil
}

// SetReadDeadline sets Read's deadline.
func (c *asyncConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !t.IsZero() {
		c.timer = time.AfterFunc(time.Until(t), func() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		})
	}
	c.cond.Broadcast()
	return nil
}

// Write queues b: it returns at once unless maxQueued bytes wait.
func (c *asyncConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closing && len(c.queue) >= maxQueued {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closing {
		return 0, net.ErrClosed
	}
	c.queue = append(c.queue, b...)
	c.cond.Broadcast()
	return len(b), nil
}

// writer writes the queue to the pipe until the connection is closed and
// its queue written, or the pipe fails.
func (c *asyncConn) writer() {
	defer close(c.done)
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closing && c.err == nil {
			c.cond.Wait()
		}
		if c.err != nil || len(c.queue) == 0 { // failed, or closing with nothing left
			c.mu.Unlock()
			return
		}
		out := c.queue
		c.queue = c.spare[:0]
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		c.spare = out[:0]
		if err != nil && c.err == nil {
			c.err = err
		}
		c.cond.Broadcast() // writers waiting for room
		c.mu.Unlock()
	}
}

// Close writes what is queued (for up to closeDrain), then closes the
// pipe: a Read then returns what was read before, then net.ErrClosed.
func (c *asyncConn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closing = true
	c.cond.Broadcast()
	c.mu.Unlock()
	t := time.NewTimer(closeDrain)
	select {
	case <-c.done:
	case <-t.C:
	}
	t.Stop()
	err := c.Conn.Close() // unblocks the reader, and a writer stuck on the pipe
	<-c.done
	c.mu.Lock()
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.inErr = net.ErrClosed // ends a reader waiting for room
	if c.timer != nil {
		c.timer.Stop()
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	return err
}

// SetDeadline sets the read deadline: a write only queues.
func (c *asyncConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetWriteDeadline does nothing: a write only queues (nats.go sets one
// before each flush).
func (c *asyncConn) SetWriteDeadline(time.Time) error { return nil }
