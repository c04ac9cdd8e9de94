package api

import (
	"net/http"
	"strings"
	"testing"
)

// bodyRoutes are the routes that read a body, with their path parameters
// filled with plausible values, and the token each is called with.
func (e *env) bodyRoutes() []struct{ method, path, token string } {
	var out []struct{ method, path, token string }
	for _, rt := range e.api.Routes() {
		if rt.Method == http.MethodGet {
			continue
		}
		path := strings.NewReplacer("{serial}", "1", "{uuid}", e.userRec.UUID, "{id}", "0123456789abcdef",
			"{name}", "cyclades", "{token}", "x").Replace(rt.Path)
		token := e.admin
		if rt.Access == Service {
			token = e.service
		}
		out = append(out, struct{ method, path, token string }{rt.Method, path, token})
	}
	return out
}

// FuzzEveryBody sends arbitrary bodies to every route that reads one,
// through the real handler: no answer may be a 5xx, and every refusal must
// be a cloudFault.
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
	e := newEnv(f)
	routes := e.bodyRoutes()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e.t = t
		rt := routes[int(which)%len(routes)]
		status, raw := e.doRaw(rt.method, rt.path, rt.token, body)
		if status >= 500 {
			t.Fatalf("%s %s answered %d: %s", rt.method, rt.path, status, raw)
		}
		if status >= 400 && (len(raw) == 0 || raw[0] != '{') {
			t.Fatalf("%s %s refused without a cloudFault: %d %q", rt.method, rt.path, status, raw)
		}
	})
}
