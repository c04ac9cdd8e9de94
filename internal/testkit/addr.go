package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
)

// FreeAddr returns a loopback address (host:port) where nothing listens,
// for a server the test starts later on it (the nodes of a cluster must
// know each other's route addresses before any listens), or for one that
// is not there.
//
// The port is outside the kernel's range of ephemeral ports
// (/proc/sys/net/ipv4/ip_local_port_range), where it picks the local port
// of every outgoing connection: a port picked there (listening on port 0)
// and let go was, now and then under load, taken by a connection of another
// test before its server bound it ("bind: address already in use", a node
// of a cluster test that never started). Each port is handed out once per
// process. Where the range leaves no room, it falls back to port 0.
func FreeAddr(tb TB) string {
	tb.Helper()
	lo, hi := portsOutsideEphemeral()
	for range 200 {
		if hi <= lo {
			break
		}
		port := lo + rand.IntN(hi-lo)
		if !takePort(port) {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		if err := ln.Close(); err != nil {
			tb.Fatalf("close the listener: %v", err)
		}
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
		return ""
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		tb.Fatalf("close the listener: %v", err)
	}
	return addr
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// takePort reports whether port was not handed out before, and marks it.
func takePort(port int) bool {
	portsMu.Lock()
	defer portsMu.Unlock()
	if portsUsed[port] {
		return false
	}
	portsUsed[port] = true
	return true
}

// portsOutsideEphemeral is the range [lo, hi) of ports FreeAddr picks from:
// from 10000 up to the first ephemeral port (32768 by default on Linux).
func portsOutsideEphemeral() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if _, err := fmt.Sscan(string(b), &first, &last); err == nil {
			hi = first
		}
	}
	return lo, hi
}
