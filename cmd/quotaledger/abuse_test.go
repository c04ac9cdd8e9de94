package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/internal/testkit"
)

// TestAbuseSlowClients runs the binary with short HTTP limits (from a
// configuration file, so that the keys are checked too) and checks that
// slow and abusive clients are cut off while others are served: a
// slowloris, headers over the limit, a body trickled slower than the read
// timeout, a keep-alive connection left idle.
func TestAbuseSlowClients(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, `http-read-header-timeout: 300ms
http-read-timeout: 1s
http-write-timeout: 5s
http-idle-timeout: 1s
http-max-header-bytes: 8192
`)
	p := startServe(t, nil, "--data", dir, "--config", cfg)
	token := readBootstrap(t, dir).Token
	addr := strings.TrimPrefix(p.base, "http://")

	t.Run("Slowloris", func(t *testing.T) {
		baseline := goroutines(t, p.base)
		const slow = 300
		var wg sync.WaitGroup
		errs := make(chan error, slow)
		start := time.Now()
		for i := range slow {
			wg.Go(func() {
				if err := slowloris(addr, i); err != nil {
					errs <- err
				}
			})
		}
		// Meanwhile a client with a token is answered, call after call.
		// What counts is that every call is answered 200, not how fast on
		// a busy machine: the timeout only turns a hang into a failure.
		client := &http.Client{Timeout: time.Minute}
		time.Sleep(100 * time.Millisecond)
		peak := goroutines(t, p.base) // for the log: timing decides how many are held yet
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		calls := 0
		for waiting := true; waiting || calls < 5; calls++ {
			select {
			case <-done:
				waiting = false
			default:
			}
			if err := whoami(client, p.base, token); err != nil {
				t.Fatalf("call %d, %v into the slowloris: %v", calls+1, time.Since(start).Round(time.Millisecond), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d slow connections closed by the server within %v; %d calls answered meanwhile; go_goroutines %d before, %d at 100 ms",
			slow, time.Since(start).Round(time.Millisecond), calls, baseline, peak)
		client.CloseIdleConnections()
		// The goroutines of the slow connections are gone (the deadline
		// only turns a leak into a failure).
		testkit.CheckFor(t, time.Minute, poll, func() error {
			if n := goroutines(t, p.base); n > baseline+20 {
				return fmt.Errorf("go_goroutines %d after the slowloris, %d before", n, baseline)
			}
			return nil
		})
	})

	t.Run("HeaderTooLarge", func(t *testing.T) {
		for _, tc := range []struct {
			size int
			want int
		}{
			{4 << 10, http.StatusOK},
			{64 << 10, http.StatusRequestHeaderFieldsTooLarge},
		} {
			req, err := http.NewRequest(http.MethodGet, p.base+"/account/v1.0/auth/whoami", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Auth-Token", token)
			req.Header.Set("X-Padding", strings.Repeat("p", tc.size))
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatalf("%d bytes of headers: %v", tc.size, err)
			}
			raw, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%d bytes of headers: %d, want %d", tc.size, resp.StatusCode, tc.want)
			}
			// The 431 is a cloudFault as every answer (issue 17), not Go's
			// plain text.
			var fault map[string]struct {
				Code int `json:"code"`
			}
			if tc.want != http.StatusOK && (err != nil || json.Unmarshal(raw, &fault) != nil || fault["overLimit"].Code != tc.want) {
				t.Errorf("%d bytes of headers: %v %q, want a cloudFault", tc.size, err, raw)
			}
		}
	})

	t.Run("SlowBody", func(t *testing.T) {
		// A login whose body comes a byte every 200 ms: 20 s for all of
		// it, far past the read timeout.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := `{"username":"` + adminUsername + `","password":"` + strings.Repeat("x", 60) + `"}`
		if _, err := fmt.Fprintf(c, "POST /account/v1.0/auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, len(body)); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for i := 0; i < len(body); i++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := c.Write([]byte{body[i]}); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		answer, err := io.ReadAll(c)
		if isTimeout(err) {
			t.Fatalf("the connection was still open after 10 s of a trickled body (read %q)", answer)
		}
		if strings.HasPrefix(string(answer), "HTTP/1.1 200") {
			t.Fatalf("the trickled login was answered 200: %q", answer)
		}
		status, _, _ := strings.Cut(string(answer), "\r\n")
		t.Logf("the connection was closed (%v), after %q", err, status)
	})

	t.Run("IdleKeepAlive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		// Two calls on the connection: it is kept alive.
		for i := range 2 {
			if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Close {
				t.Fatalf("call %d: %d, close %v", i+1, resp.StatusCode, resp.Close)
			}
		}
		// Then left idle, the server closes it.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		rest, err := io.ReadAll(br)
		if isTimeout(err) {
			t.Fatal("an idle keep-alive connection was still open after 10 s")
		}
		if len(rest) != 0 {
			t.Fatalf("unasked for: %q", rest)
		}
	})
}

// slowloris opens a connection to addr and sends a request's headers a
// byte every 100 ms, without end, until the server closes it; it fails if
// the server is still reading after 10 s.
func slowloris(addr string, i int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("slow connection %d: %w", i, err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Slow-%d: ", addr, i); err != nil {
		return fmt.Errorf("slow connection %d: %w", i, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var buf [512]byte
	for time.Now().Before(deadline) {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Read(buf[:])
		switch {
		case n > 0:
			return fmt.Errorf("slow connection %d: answered before its headers ended: %q", i, buf[:n])
		case isTimeout(err):
			// Still open: one more byte.
			if _, err := c.Write([]byte("a")); err != nil {
				return nil // closed by the server
			}
		default:
			return nil // EOF or reset: closed by the server
		}
	}
	return fmt.Errorf("slow connection %d: still open after 10 s of trickled headers", i)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// whoami is an authenticated call that must be answered 200.
func whoami(client *http.Client, base, token string) error {
	req, err := http.NewRequest(http.MethodGet, base+"/account/v1.0/auth/whoami", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("whoami: %d", resp.StatusCode)
	}
	return nil
}

// goroutines is the server's go_goroutines, from /metrics.
func goroutines(t *testing.T, base string) int {
	t.Helper()
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("go_goroutines %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatalf("/metrics has no go_goroutines (%v)", sc.Err())
	return 0
}
