package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
)

// A request net/http cannot read (headers past http.Server's
// MaxHeaderBytes, a malformed request line or header) is answered by the
// server itself, before any handler, in plain text, and there is no hook
// to answer it otherwise. FaultListener puts a cloudFault in its place:
// the connections it accepts recognise, in what the server writes, those
// exact plain-text answers (a handler's answer never matches: it has a
// Date header and a length) and write the fault instead, so a client reads
// every answer of the API the same way (issue 17).

// plainAnswer is the whole of a plain-text answer of net/http's
// (server.go, conn.serve: "HTTP/1.1 "+publicErr+errorHeaders+publicErr).
func plainAnswer(status int) string {
	publicErr := fmt.Sprintf("%d %s", status, http.StatusText(status))
	return "HTTP/1.1 " + publicErr + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + publicErr
}

// rawFaults are net/http's plain-text answers and the cloudFault answer
// written in place of each.
var rawFaults = func() map[string][]byte {
	m := map[string][]byte{}
	for status, f := range map[int]*Fault{
		http.StatusRequestHeaderFieldsTooLarge: {Kind: "overLimit", Code: http.StatusRequestHeaderFieldsTooLarge,
			Message: "request headers too large"},
		http.StatusBadRequest: {Kind: "badRequest", Code: http.StatusBadRequest,
			Message: "malformed HTTP request"},
	} {
		body, err := json.Marshal(map[string]*Fault{f.Kind: f})
		if err != nil {
			panic(err)
		}
		m[plainAnswer(status)] = fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: "+contentType+"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			status, http.StatusText(status), len(body), body)
	}
	return m
}()

// FaultListener wraps ln, the listener http.Server serves, so that
// net/http's own plain-text answers are cloudFaults. It wraps plain
// connections: net/http recognises TLS by the connection's type
// (*tls.Conn), which a wrapper would hide, so a TLS listener goes over it
// (tls.NewListener(FaultListener(tcp), cfg)), where those answers pass
// encrypted and unchanged: over TLS they stay plain text.
func FaultListener(ln net.Listener) net.Listener { return faultListener{ln} }

type faultListener struct{ net.Listener }

func (l faultListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return faultConn{c}, nil
}

// faultConn is a connection whose writes of a plain-text answer of
// net/http's are cloudFaults.
type faultConn struct{ net.Conn }

func (c faultConn) Write(p []byte) (int, error) {
	// One write of the whole answer (fmt.Fprintf on the connection); a
	// handler's answers come through a buffer and start with the same
	// status line only by chance, never whole and alone.
	if len(p) < 200 && bytes.HasPrefix(p, []byte("HTTP/1.1 4")) {
		if f, ok := rawFaults[string(p)]; ok {
			if _, err := c.Conn.Write(f); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}
