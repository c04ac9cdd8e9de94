package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzEveryBody sends arbitrary bodies to every route that reads one,
// through the real handler, with a token allowed on the route (which also
// picks it): never a 5xx or a panic, JSON where the answer says JSON, and a
// refusal is a cloudFault that changed nothing.
func FuzzEveryBody(f *testing.F) {
	for _, body := range []string{
		`{}`, `[]`, `null`, `{"holdings":[{"holder":"h","source":null,"resource":"r","limit":1}]}`,
		`{"username":"a@b.c","password":"long enough pw"}`, `{"name":"x","provisions":[]}`,
		`{"accept":[1],"reject":[]}`, `{"uuids":["a"],"displaynames":null}`, `{"auth":{"token":{"id":"x"}}}`,
		`{"role":"admin"}`, "\xff\xfe", `{"a":1e400}`, `{"limit":-9223372036854775809}`, `feedback_msg=hi`,
	} {
		for i := 0; i < 8; i++ {
			f.Add(uint8(i*17), []byte(body))
		}
	}
	e := newRouteFuzz(f)
	var routes []Route
	for _, rt := range e.api.Routes() {
		if rt.Method != http.MethodGet {
			routes = append(routes, rt)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e.t = t
		rt := routes[int(which)%len(routes)]
		toks := e.tokensFor(rt)
		if len(toks) == 0 {
			t.Fatalf("%s %s: no fixture token is allowed on it", rt.Method, rt.Path)
		}
		tok := toks[int(which)/len(routes)%len(toks)]
		path := e.path(rt, false, "")
		req := httptest.NewRequest(rt.Method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok.secret != "" {
			req.Header.Set("X-Auth-Token", tok.secret)
		}
		before := e.before()
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, req)
		e.checkFuzzAnswer(t, rt.Method+" "+path+" as "+tok.name, w, before)
	})
}
