package testkit

import "net"

// FreeAddr returns a loopback address (host:port) where nothing listens:
// something did a moment ago, so nothing else is likely to. For a server
// that is not there; a server of the test listens on port 0 (or -1 for
// NATS) and says where.
func FreeAddr(tb TB) string {
	tb.Helper()
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
