package testkit

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddr: the addresses are on loopback, each port outside the
// kernel's ephemeral range (where outgoing connections take theirs), never
// handed out twice, and free to listen on.
func TestFreeAddr(t *testing.T) {
	lo, hi := portsOutsideEphemeral()
	seen := map[string]bool{}
	for range 50 {
		addr := FreeAddr(t)
		host, p, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("FreeAddr = %q (%v)", addr, err)
		}
		port, _ := strconv.Atoi(p)
		if port < lo || port >= hi {
			t.Fatalf("port %d is outside [%d, %d): the kernel may give it to an outgoing connection", port, lo, hi)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		_ = ln.Close()
	}
}
