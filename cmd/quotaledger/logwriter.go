package main

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// logFlushInterval is the longest a log line waits in logWriter's buffer.
const logFlushInterval = 100 * time.Millisecond

// logBufferSize is logWriter's buffer: past it, the buffer is written out at
// once.
const logBufferSize = 64 << 10

// logWriter buffers serve's log lines on their way to w (stderr), so that a
// request's log line is not a write(2) of its own: the lines are written
// out every logFlushInterval, when the buffer fills, and on Close. Each
// Write is one whole line (zerolog writes a line at a time), so lines are
// never cut or interleaved. A clean exit loses no line (serve closes the
// writer last); a kill -9 loses at most the last logFlushInterval of them
// (docs/observability.md). After Close, writes go straight to w.
type logWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// newLogWriter returns a logWriter on w, flushing every interval until
// Close.
func newLogWriter(w io.Writer, interval time.Duration) *logWriter {
	lw := &logWriter{w: w, buf: make([]byte, 0, logBufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go lw.flushLoop(interval)
	return lw
}

func (lw *logWriter) flushLoop(interval time.Duration) {
	defer close(lw.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-lw.stop:
			return
		case <-t.C:
			_ = lw.Flush()
		}
	}
}

// Write buffers p (one log line), writing the buffer out first if p does
// not fit; a line as large as the buffer, or any line after Close, is
// written at once.
func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed || len(p) >= cap(lw.buf) {
		if err := lw.flushLocked(); err != nil {
			return 0, err
		}
		return lw.w.Write(p)
	}
	if len(lw.buf)+len(p) > cap(lw.buf) {
		if err := lw.flushLocked(); err != nil {
			return 0, err
		}
	}
	lw.buf = append(lw.buf, p...)
	return len(p), nil
}

// Flush writes out what is buffered.
func (lw *logWriter) Flush() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.flushLocked()
}

func (lw *logWriter) flushLocked() error {
	if len(lw.buf) == 0 {
		return nil
	}
	_, err := lw.w.Write(lw.buf)
	lw.buf = lw.buf[:0] // a failed write (stderr gone) drops the lines rather than growing without bound
	return err
}

// Close writes out what is buffered and stops the periodic flush; later
// writes go straight to w. It is safe to call more than once.
func (lw *logWriter) Close() error {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return nil
	}
	lw.closed = true
	err := lw.flushLocked()
	lw.mu.Unlock()
	close(lw.stop)
	<-lw.done
	return err
}

// urgentFlusher writes a log line to w (the logWriter, or the console
// writer in front of it) and, for a line at error level or above, writes
// the buffer out at once: an error is seen without delay, and a fatal line
// (Pebble's, just before os.Exit) is not lost.
type urgentFlusher struct {
	w  io.Writer
	lw *logWriter
}

func (u urgentFlusher) Write(p []byte) (int, error) { return u.w.Write(p) }

func (u urgentFlusher) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	n, err := u.w.Write(p)
	if l >= zerolog.ErrorLevel && l <= zerolog.PanicLevel {
		if ferr := u.lw.Flush(); err == nil {
			err = ferr
		}
	}
	return n, err
}
