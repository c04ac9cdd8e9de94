package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestAstakosWire replays the Astakos-compatible routes (DESIGN.md §3, the
// first table) written as scripts in testdata/astakos, one file per family.
// Each file starts from a new test env (newEnvOn) over a ledger whose clock
// stands at 2026-01-02T03:04:05Z, with its principals: the admin "admin",
// the user "user" (a session token), the service "cyclades" with its
// resources cyclades.vm and cyclades.ram (2 and 4 GiB in every base
// project).
//
// A request is a stanza:
//
//	METHOD PATH [PATH...] [as=P | token=T] [header=(Name: value, ...)] [show=(Name, ...)] [times=P] [expand]
//	the body, verbatim (none if empty; sent as application/json unless a header says otherwise)
//	----
//	the status
//	Name: value                 the answer's headers that show names
//	the body, verbatim
//
// as=P sends P's token in X-Auth-Token, token=T the literal T; a header
// with nothing after its colon is not sent (Content-Type: ). With several
// paths (a route and its /astakos/api alias), each is called in turn and
// the answer is shown once if they are all the same, else per path. With
// expand the body is a text/template first: {{repeat N S}} is S N times,
// {{list N S}} N copies of S joined by commas, {{"\xff"}} a raw byte.
//
// What must vary is written as a placeholder, in requests and in answers:
// <uuid:P> and <token:P> for principal P's uuid and token, <server> for the
// server's URL; with times=P, <created:P> and <expires:P> for the times of
// P's token (in RFC 3339 and in milliseconds). The members of an object
// whose keys hold a placeholder (a map keyed by uuid, sorted by the real
// uuid on the wire) are sorted by placeholder; everything else is compared
// byte for byte.
//
// Other commands:
//
//	setup                 one per line:
//	  user P                          a user P@example.com, active, logged in
//	  service P type=T [url=U]        a service with its token (an endpoint U, v2.0)
//	  resource R service=S [unit=U] [limit=N] [description=(D)]
//	                                  a resource (allowed in projects; limit: base quota)
//	  access-token P user=U [read-only]  a personal token of user U
//	  quota H S R LIMIT               a holding set on the ledger (S "-": null source)
//	state                 the ledger's holdings and counts (what a refused call must not change)
//
// go test ./api -run TestAstakosWire -rewrite regenerates the expected answers.
func TestAstakosWire(t *testing.T) {
	datadriven.Walk(t, "testdata/astakos", func(t *testing.T, path string) {
		clock := newTestClock()
		e := newEnvOn(t, zerolog.Nop(), nil, ledger.Options{Dir: "/l", FS: vfs.NewMem(), NoFreeSpaceCheck: true, Now: clock.Now})
		s := newWireScript(e)
		datadriven.RunTest(t, path, s.run)
	})
}

// wireScript runs one script over an env.
type wireScript struct {
	e          *env
	principals []*scriptPrincipal // in the order made, for stable output
}

// scriptPrincipal is someone a script names: a user (uuid and token), a
// service or a personal token (token only).
type scriptPrincipal struct {
	name, uuid, token string
}

func newWireScript(e *env) *wireScript {
	s := &wireScript{e: e}
	p, err := e.id.Authenticate(e.admin)
	if err != nil {
		e.t.Fatal(err)
	}
	s.add("admin", p.User.UUID, e.admin)
	s.add("user", e.uuid(), e.user)
	s.add("cyclades", "", e.service)
	return s
}

func (s *wireScript) add(name, uuid, token string) {
	s.e.t.Helper()
	if s.principal(name) != nil {
		s.e.t.Fatalf("principal %q made twice", name)
	}
	s.principals = append(s.principals, &scriptPrincipal{name: name, uuid: uuid, token: token})
}

func (s *wireScript) principal(name string) *scriptPrincipal {
	for _, p := range s.principals {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (s *wireScript) run(t *testing.T, td *datadriven.TestData) string {
	s.e.t = t // the env's helpers fail the test running the stanza (a subtest's inside a subtest block)
	switch td.Cmd {
	case "setup":
		for _, line := range strings.Split(td.Input, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			cmd, args, err := datadriven.ParseLine(line)
			if err != nil {
				td.Fatalf(t, "%v", err)
			}
			if err := s.setup(cmd, args); err != nil {
				return fmt.Sprintf("%s: %v", line, err)
			}
		}
		return "ok"
	case "state":
		return s.state()
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD":
		return s.request(t, td)
	}
	td.Fatalf(t, "unknown command %q", td.Cmd)
	return ""
}

// setup makes one thing a setup line names.
func (s *wireScript) setup(cmd string, args []datadriven.CmdArg) error {
	ctx := context.Background()
	id := s.e.id
	name := ""
	if len(args) > 0 && len(args[0].Vals) == 0 {
		name = args[0].Key
	}
	arg := func(key string) string {
		for _, a := range args {
			if a.Key == key && len(a.Vals) > 0 {
				return a.Vals[0]
			}
		}
		return ""
	}
	has := func(key string) bool {
		return slices.ContainsFunc(args, func(a datadriven.CmdArg) bool { return a.Key == key })
	}
	switch cmd {
	case "user":
		u, err := id.CreateUser(ctx, identity.NewUser{Username: name + "@example.com", Password: testPassword, Active: true})
		if err != nil {
			return err
		}
		tok, _, _, err := id.Login(ctx, u.Username, testPassword, identity.Origin{})
		if err != nil {
			return err
		}
		s.add(name, u.UUID, tok)
	case "service":
		in := identity.NewService{Name: name, Type: arg("type")}
		if u := arg("url"); u != "" {
			in.Endpoints = []identity.Endpoint{{PublicURL: u, VersionID: "v2.0"}}
		}
		tok, _, err := id.CreateService(ctx, in)
		if err != nil {
			return err
		}
		s.add(name, "", tok)
	case "resource":
		r := identity.Resource{Name: name, Service: arg("service"), Unit: arg("unit"), Description: arg("description"), AllowInProjects: true}
		if v := arg("limit"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return err
			}
			r.UpLimit = n
		}
		_, err := id.CreateResource(ctx, r)
		return err
	case "access-token":
		owner := s.principal(arg("user"))
		if owner == nil || owner.uuid == "" {
			return fmt.Errorf("no user %q", arg("user"))
		}
		tok, _, err := id.CreateAccessToken(ctx, owner.uuid, name, time.Time{}, has("read-only"))
		if err != nil {
			return err
		}
		s.add(name, "", tok)
	case "quota":
		if len(args) != 4 {
			return fmt.Errorf("quota wants holder source resource limit")
		}
		src := holdings.SourceOf(s.substitute(args[1].Key))
		if args[1].Key == "-" {
			src = holdings.NullSource
		}
		limit, err := strconv.ParseInt(args[3].Key, 10, 64)
		if err != nil {
			return err
		}
		key := holdings.Key{Holder: s.substitute(args[0].Key), Source: src, Resource: args[2].Key}
		return s.e.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: key, Limit: limit}})
	default:
		return fmt.Errorf("unknown setup %q", cmd)
	}
	return nil
}

// state prints the ledger's holdings (sorted once normalised) and counts.
func (s *wireScript) state() string {
	var lines []string
	for _, h := range s.e.l.FindHoldings(ledger.HoldingFilter{}) {
		lines = append(lines, s.normalise(fmt.Sprintf("%s %s %s limit=%d min=%d max=%d",
			h.Holder, h.Source, h.Resource, h.Limit, h.UsageMin, h.UsageMax)))
	}
	slices.Sort(lines)
	st := s.e.l.Stats()
	lines = append(lines, fmt.Sprintf("holdings=%d pending=%d serial=%d", st.Holdings, st.Pending, st.Serial))
	return strings.Join(lines, "\n")
}

// request sends a request stanza to each of its paths and renders the
// answers.
func (s *wireScript) request(t *testing.T, td *datadriven.TestData) string {
	var paths []string
	headers := map[string]string{}
	var show []string
	var times *scriptPrincipal
	for _, a := range td.CmdArgs {
		switch {
		case strings.HasPrefix(a.Key, "/"):
			p := a.Key // a query's "=" splits the path into a key and a value
			switch len(a.Vals) {
			case 0:
			case 1:
				p += "=" + a.Vals[0]
			default:
				td.Fatalf(t, "path %s: a query value may not start with (", a.Key)
			}
			paths = append(paths, s.substitute(p))
		case a.Key == "as":
			p := s.principal(a.Vals[0])
			if p == nil {
				td.Fatalf(t, "no principal %q", a.Vals[0])
			}
			headers["X-Auth-Token"] = p.token
		case a.Key == "token":
			headers["X-Auth-Token"] = s.substitute(a.Vals[0])
		case a.Key == "header":
			for _, h := range a.Vals {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					td.Fatalf(t, "header %q is not Name: value", h)
				}
				headers[strings.TrimSpace(k)] = s.substitute(strings.TrimSpace(v)) // "" is not sent
			}
		case a.Key == "show":
			show = a.Vals
		case a.Key == "times":
			if times = s.principal(a.Vals[0]); times == nil {
				td.Fatalf(t, "no principal %q", a.Vals[0])
			}
		case a.Key == "expand":
		default:
			td.Fatalf(t, "unknown argument %q", a.Key)
		}
	}
	if len(paths) == 0 {
		td.Fatalf(t, "no path")
	}
	var body []byte
	if td.Input != "" {
		in := td.Input
		if td.HasArg("expand") {
			in = expandBody(t, td, in)
		}
		body = []byte(s.substitute(in))
		if _, ok := headers["Content-Type"]; !ok {
			headers["Content-Type"] = "application/json"
		}
	}
	for k, v := range headers {
		if v == "" {
			delete(headers, k)
		}
	}
	var outs []string
	for _, p := range paths {
		st, hdr, raw := s.e.send(td.Cmd, p, headers, body)
		var sb strings.Builder
		fmt.Fprintf(&sb, "%d\n", st)
		for _, h := range show {
			fmt.Fprintf(&sb, "%s: %s\n", h, hdr.Get(h))
		}
		sb.WriteString(s.answer(raw, times))
		outs = append(outs, sb.String())
	}
	if len(slices.Compact(slices.Clone(outs))) == 1 {
		return outs[0]
	}
	var sb strings.Builder
	for i, p := range paths {
		fmt.Fprintf(&sb, "-- %s --\n%s", s.normalise(p), outs[i])
		if !strings.HasSuffix(outs[i], "\n") {
			sb.WriteString("\n")
		}
	}
	return sb.String()
}

// expandBody runs a body through text/template with repeat and list.
func expandBody(t *testing.T, td *datadriven.TestData, in string) string {
	tmpl, err := template.New(td.Pos).Funcs(template.FuncMap{
		"repeat": func(n int, s string) string { return strings.Repeat(s, n) },
		"list": func(n int, s string) string {
			items := make([]string, n)
			for i := range items {
				items[i] = s
			}
			return strings.Join(items, ",")
		},
	}).Parse(in)
	if err != nil {
		td.Fatalf(t, "expand: %v", err)
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, nil); err != nil {
		td.Fatalf(t, "expand: %v", err)
	}
	return out.String()
}

var placeholder = regexp.MustCompile(`<(uuid|token):([a-z0-9_-]+)>|<server>`)

// substitute puts the values of placeholders in a request.
func (s *wireScript) substitute(in string) string {
	return placeholder.ReplaceAllStringFunc(in, func(m string) string {
		if m == "<server>" {
			return s.e.srv.URL
		}
		kind, name, _ := strings.Cut(strings.Trim(m, "<>"), ":")
		p := s.principal(name)
		switch {
		case p == nil:
			s.e.t.Fatalf("%s: no principal %q", m, name)
		case kind == "uuid" && p.uuid == "":
			s.e.t.Fatalf("%s: %q has no uuid", m, name)
		case kind == "uuid":
			return p.uuid
		}
		return p.token
	})
}

// normalise puts placeholders for the values that vary from run to run.
func (s *wireScript) normalise(out string) string {
	pairs := []string{s.e.srv.URL, "<server>"}
	for _, p := range s.principals {
		pairs = append(pairs, p.token, "<token:"+p.name+">")
		if p.uuid != "" {
			pairs = append(pairs, p.uuid, "<uuid:"+p.name+">")
		}
	}
	return strings.NewReplacer(pairs...).Replace(out)
}

// answer renders an answer's body: normalised, with the times of times's
// token as placeholders, and the members of objects keyed by placeholders
// sorted.
func (s *wireScript) answer(raw []byte, times *scriptPrincipal) string {
	out := s.normalise(string(raw))
	if times != nil {
		p, err := s.e.id.Authenticate(times.token)
		if err != nil {
			s.e.t.Fatalf("times of %s: %v", times.name, err)
		}
		for _, tm := range []struct {
			name string
			t    time.Time
		}{{"created", p.Token.Created}, {"expires", p.Token.Expires}} {
			if tm.t.IsZero() {
				continue
			}
			ph := "<" + tm.name + ":" + times.name + ">"
			out = strings.ReplaceAll(out, `"`+tm.t.UTC().Format(time.RFC3339Nano)+`"`, `"`+ph+`"`)
			millis := regexp.MustCompile(`\b` + strconv.FormatInt(tm.t.UnixMilli(), 10) + `\b`)
			out = millis.ReplaceAllLiteralString(out, ph)
		}
	}
	if json.Valid([]byte(out)) {
		var b bytes.Buffer
		b.Write(sortPlaceholderKeys(&b, []byte(out)))
		out = b.String()
	}
	return out
}

// sortPlaceholderKeys writes the JSON value v (valid) byte for byte, but
// for the members of objects with a key that holds a placeholder, which it
// writes sorted by key. It returns the rest of v after the value.
func sortPlaceholderKeys(w *bytes.Buffer, v []byte) []byte {
	ws := func() {
		n := len(v) - len(bytes.TrimLeft(v, " \t\r\n"))
		w.Write(v[:n])
		v = v[n:]
	}
	ws()
	switch v[0] {
	case '{', '[':
		closing := byte('}')
		if v[0] == '[' {
			closing = ']'
		}
		w.WriteByte(v[0])
		v = v[1:]
		type member struct{ key, text string }
		var members []member
		sorted := false
		for {
			var m bytes.Buffer
			lead := len(v) - len(bytes.TrimLeft(v, " \t\r\n"))
			if v[lead] == closing {
				break
			}
			key := ""
			if closing == '}' {
				rest := sortPlaceholderKeys(&m, v)
				key = strings.TrimSpace(m.String())
				sorted = sorted || strings.Contains(key, "<")
				v = rest
				n := bytes.IndexByte(v, ':')
				m.Write(v[:n+1])
				v = v[n+1:]
			}
			v = sortPlaceholderKeys(&m, v)
			n := len(v) - len(bytes.TrimLeft(v, " \t\r\n"))
			m.Write(v[:n])
			v = v[n:]
			members = append(members, member{key, m.String()})
			if v[0] == ',' {
				v = v[1:]
				continue
			}
		}
		if sorted {
			slices.SortStableFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
		}
		for i, m := range members {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(m.text)
		}
		ws()
		w.WriteByte(v[0])
		return v[1:]
	case '"':
		i := 1
		for v[i] != '"' {
			if v[i] == '\\' {
				i++
			}
			i++
		}
		w.Write(v[:i+1])
		return v[i+1:]
	}
	n := bytes.IndexAny(v, ",]} \t\r\n")
	if n < 0 {
		n = len(v)
	}
	w.Write(v[:n])
	return v[n:]
}
