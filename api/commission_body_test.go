package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// The decoders of the commission bodies (parseIssue, readAction,
// readResolve) against the reference below: the decoders they replaced,
// which read each body into a map of raw values and decoded those a
// second time, kept here verbatim but for their names. On any body, both
// must come to the same request or to the same fault.

// refParseObject is the reference's parseObject.
func refParseObject(b []byte) (map[string]json.RawMessage, error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 {
		return nil, badRequest("request body is empty; a JSON object is expected")
	}
	if t[0] != '{' {
		if !json.Valid(b) {
			return nil, decodeJSON(b, new(any), false)
		}
		return nil, badRequest("request body must be a JSON object")
	}
	var m map[string]json.RawMessage
	if err := decodeJSON(b, &m, false); err != nil {
		return nil, err
	}
	return m, nil
}

// refRawInt decodes a JSON integer (no fraction, no exponent) that fits int64.
func refRawInt(raw json.RawMessage) (int64, error) {
	s := string(raw)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, errors.New("is not an integer")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errRange
	}
	return v, nil
}

// refParseIssue reads an issue body into a request (Client left unset).
func refParseIssue(s *Server, body []byte, headerKey string) (ledger.IssueRequest, error) {
	var req ledger.IssueRequest
	m, err := refParseObject(body)
	if err != nil {
		return req, err
	}
	praw, ok := m["provisions"]
	if !ok || isNull(praw) {
		return req, badRequest("Provisions are missing.")
	}
	if praw[0] != '[' {
		return req, badRequest("Provisions should be a list.")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(praw, &list); err != nil {
		return req, badRequest("Provisions should be a list.")
	}
	req.Provisions = make([]holdings.Provision, 0, len(list))
	for i, raw := range list {
		p, err := refParseProvision(raw)
		if err != nil {
			return req, badRequest("Malformed provision %d: %s", i, err)
		}
		req.Provisions = append(req.Provisions, p)
	}
	var ie *holdings.InvalidError
	if err := s.limits.ValidateProvisions(req.Provisions); errors.As(err, &ie) {
		switch ie.Problem {
		case holdings.TooMany:
			return req, badRequest("a commission has at most %d provisions; this one has %d", ie.Max, len(list))
		case holdings.Empty:
			return req, badRequest("Malformed provision %d: %q must not be empty", ie.Provision, ie.Part)
		case holdings.TooLong:
			return req, badRequest("Malformed provision %d: %q is longer than %d bytes", ie.Provision, ie.Part, ie.Max)
		}
		return req, badRequest("Malformed provision %d: %q must be valid UTF-8", ie.Provision, ie.Part)
	}
	if raw, ok := m["force"]; ok {
		if req.Force, ok = rawBool(raw); !ok {
			return req, badRequest(`"force" option should be a boolean.`)
		}
	}
	if raw, ok := m["auto_accept"]; ok {
		if req.AutoAccept, ok = rawBool(raw); !ok {
			return req, badRequest(`"auto_accept" option should be a boolean.`)
		}
	}
	if raw, ok := m["name"]; ok {
		if req.Name, ok = rawString(raw); !ok {
			return req, badRequest("Commission name should be a string.")
		}
		if len(req.Name) > s.opts.MaxNameLen {
			return req, badRequest("Commission name is longer than %d bytes.", s.opts.MaxNameLen)
		}
	}
	if raw, ok := m["ttl"]; ok && !isNull(raw) {
		ttl, err := refRawInt(raw)
		switch {
		case err != nil:
			return req, badRequest(`"ttl" should be an integer number of seconds: %s %v`, raw, err)
		case ttl < 0:
			return req, badRequest(`"ttl" must not be negative`)
		case ttl > maxTTL:
			return req, badRequest(`"ttl" is at most %d seconds`, maxTTL)
		}
		req.TTL = time.Duration(ttl) * time.Second
	}
	if raw, ok := m["idempotency_key"]; ok && !isNull(raw) {
		if req.IdempotencyKey, ok = rawString(raw); !ok {
			return req, badRequest(`"idempotency_key" should be a string.`)
		}
	}
	if headerKey != "" {
		if req.IdempotencyKey != "" && req.IdempotencyKey != headerKey {
			return req, badRequest("the Idempotency-Key header and the idempotency_key field differ")
		}
		req.IdempotencyKey = headerKey
	}
	if !utf8.ValidString(req.IdempotencyKey) {
		return req, badRequest("the idempotency key is not valid UTF-8")
	}
	if len(req.IdempotencyKey) > s.opts.MaxNameLen {
		return req, badRequest("the idempotency key is longer than %d bytes", s.opts.MaxNameLen)
	}
	return req, nil
}

func refParseProvision(raw json.RawMessage) (holdings.Provision, error) {
	var p holdings.Provision
	if raw[0] != '{' {
		return p, errors.New("a provision is an object {holder, source, resource, quantity}")
	}
	m, err := refParseObject(raw)
	if err != nil {
		return p, err
	}
	str := func(name string) (string, error) {
		raw, ok := m[name]
		if !ok {
			return "", fmt.Errorf("%q is missing", name)
		}
		v, ok := rawString(raw)
		if !ok {
			return "", fmt.Errorf("%q should be a string", name)
		}
		return v, nil
	}
	if p.Key.Holder, err = str("holder"); err != nil {
		return p, err
	}
	if p.Key.Resource, err = str("resource"); err != nil {
		return p, err
	}
	src, ok := m["source"]
	switch {
	case !ok:
		return p, errors.New(`"source" is missing (it may be null)`)
	case isNull(src):
		p.Key.Source = holdings.NullSource
	default:
		name, ok := rawString(src)
		if !ok {
			return p, errors.New(`"source" should be a string or null`)
		}
		p.Key.Source = holdings.SourceOf(name)
	}
	q, ok := m["quantity"]
	if !ok {
		return p, errors.New(`"quantity" is missing`)
	}
	if p.Quantity, err = refRawInt(q); err != nil {
		return p, fmt.Errorf(`"quantity" %s %v`, q, err)
	}
	if p.Quantity == math.MinInt64 {
		return p, fmt.Errorf(`"quantity" %s %v`, q, errRange)
	}
	return p, nil
}

// refReasonOf reads the optional "reason" of a resolve body.
func (c *call) refReasonOf(m map[string]json.RawMessage) (string, error) {
	raw, ok := m["reason"]
	if !ok || isNull(raw) {
		return "", nil
	}
	r, ok := rawString(raw)
	if !ok {
		return "", badRequest(`"reason" should be a string.`)
	}
	if err := c.checkName(`"reason"`, r); err != nil {
		return "", err
	}
	return r, nil
}

// refSerialList reads the "accept" or "reject" list of a resolve-many body.
func refSerialList(m map[string]json.RawMessage, name string) ([]int64, error) {
	raw, ok := m[name]
	if !ok {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, badRequest(`"accept" and "reject" should reference lists of serials.`)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest(`"accept" and "reject" should reference lists of serials.`)
	}
	out := make([]int64, len(items))
	for i, it := range items {
		v, err := refRawInt(it)
		if err != nil {
			if errors.Is(err, errRange) {
				return nil, badRequest("Serials should be integer: %s %v", it, err)
			}
			return nil, badRequest("Serials should be integer.")
		}
		out[i] = v
	}
	return out, nil
}

// An action's and a resolve-many's outcome, as their handlers reach it
// before the ledger: the body's fault (before the path's serial is read),
// else the decision or its fault.
type actionOutcome struct {
	bodyFault, fault string
	accept           bool
	reason           string
}

type resolveOutcome struct {
	fault            string
	accept, reject   []int64
	reason           string
	acceptN, rejectN int
}

// faultText is err as the caller reads it: its status, kind and message.
func faultText(err error) string {
	if err == nil {
		return ""
	}
	f := faultOf(err)
	return fmt.Sprintf("%d %s %q", f.Code, f.Kind, f.Message)
}

// refAction is astAction's reading of a body before the ledger, the
// reference's way.
func refAction(c *call, body []byte) actionOutcome {
	m, err := refParseObject(body)
	if err != nil {
		return actionOutcome{bodyFault: faultText(err)}
	}
	_, accept := m["accept"]
	_, reject := m["reject"]
	if accept == reject {
		return actionOutcome{fault: faultText(badRequest("Specify either accept or reject action."))}
	}
	reason, err := c.refReasonOf(m)
	if err != nil {
		return actionOutcome{fault: faultText(err)}
	}
	return actionOutcome{accept: accept, reason: reason}
}

// newAction is the same with readAction.
func newAction(c *call, body []byte) actionOutcome {
	b, err := readAction(body)
	if err != nil {
		return actionOutcome{bodyFault: faultText(err)}
	}
	if b.accept == b.reject {
		return actionOutcome{fault: faultText(badRequest("Specify either accept or reject action."))}
	}
	reason, err := c.s.reason(b.reason)
	if err != nil {
		return actionOutcome{fault: faultText(err)}
	}
	return actionOutcome{accept: b.accept, reason: reason}
}

// refResolve is astResolveMany's reading of a body, the reference's way.
func refResolve(c *call, body []byte) resolveOutcome {
	m, err := refParseObject(body)
	if err != nil {
		return resolveOutcome{fault: faultText(err)}
	}
	accept, err := refSerialList(m, "accept")
	if err != nil {
		return resolveOutcome{fault: faultText(err)}
	}
	reject, err := refSerialList(m, "reject")
	if err != nil {
		return resolveOutcome{fault: faultText(err)}
	}
	if len(accept)+len(reject) > maxSerials {
		return resolveOutcome{fault: faultText(badRequest("at most %d serials may be resolved at once", maxSerials))}
	}
	reason, err := c.refReasonOf(m)
	if err != nil {
		return resolveOutcome{fault: faultText(err)}
	}
	return resolveOutcome{accept: accept, reject: reject, reason: reason, acceptN: len(accept), rejectN: len(reject)}
}

// newResolve is the same with readResolve.
func newResolve(c *call, body []byte) resolveOutcome {
	b, err := readResolve(body)
	switch {
	case err != nil:
		return resolveOutcome{fault: faultText(err)}
	case b.acceptErr != nil:
		return resolveOutcome{fault: faultText(b.acceptErr)}
	case b.rejectErr != nil:
		return resolveOutcome{fault: faultText(b.rejectErr)}
	}
	if len(b.accept)+len(b.reject) > maxSerials {
		return resolveOutcome{fault: faultText(badRequest("at most %d serials may be resolved at once", maxSerials))}
	}
	reason, err := c.s.reason(b.reason)
	if err != nil {
		return resolveOutcome{fault: faultText(err)}
	}
	return resolveOutcome{accept: b.accept, reject: b.reject, reason: reason, acceptN: len(b.accept), rejectN: len(b.reject)}
}

// sameList says two lists of serials are the same (nil and empty alike).
func sameList(a, b []int64) bool { return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b) }

// bodyServer is a server for the decoders alone, with small caps so that
// the fuzzer reaches them.
func bodyServer() *Server {
	opts := Options{MaxProvisions: 4, MaxNameLen: 16}.withDefaults()
	return &Server{opts: opts, limits: holdings.Limits{NameLen: opts.MaxNameLen, Provisions: opts.MaxProvisions}}
}

// shown is a body for a failure's message: its start, if it is long.
func shown(body []byte) string {
	if len(body) > 300 {
		return fmt.Sprintf("%q... (%d bytes)", body[:300], len(body))
	}
	return fmt.Sprintf("%q", body)
}

func checkIssueBody(t *testing.T, s *Server, body []byte, key string) {
	t.Helper()
	want, wantErr := refParseIssue(s, body, key)
	got, gotErr := s.parseIssue(body, key)
	if faultText(gotErr) != faultText(wantErr) {
		t.Fatalf("issue %s (key %q):\n got fault %s\nwant fault %s", shown(body), key, faultText(gotErr), faultText(wantErr))
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("issue %s (key %q):\n got %+v\nwant %+v", shown(body), key, got, want)
	}
}

func checkActionBody(t *testing.T, s *Server, body []byte) {
	t.Helper()
	c := &call{s: s}
	if got, want := newAction(c, body), refAction(c, body); got != want {
		t.Fatalf("action %s:\n got %+v\nwant %+v", shown(body), got, want)
	}
	got, want := newResolve(c, body), refResolve(c, body)
	if got.fault != want.fault || got.reason != want.reason || got.acceptN != want.acceptN || got.rejectN != want.rejectN ||
		!sameList(got.accept, want.accept) || !sameList(got.reject, want.reject) {
		t.Fatalf("resolve %s:\n got %+v\nwant %+v", shown(body), got, want)
	}
}

// bodySeeds are bodies for the decoders: every seed of the fuzzers of the
// commission routes (FuzzAstakosIssue's and FuzzAstakosResolveMany's
// corpora), and the corners of JSON the scanner reads itself.
func bodySeeds(t testing.TB) [][]byte {
	seeds := []string{
		`{"provisions":[{"holder":"user:u","source":"project:p","resource":"cyclades.vm","quantity":1},` +
			`{"holder":"project:p","source":null,"resource":"cyclades.vm","quantity":-1}],"name":"vm","force":false,` +
			`"auto_accept":true,"ttl":60,"idempotency_key":"k1"}`,
		`{"provisions":[]}`, `{"provisions":null}`, `{"provisions":{}}`, `{"provisions":"x"}`, `{"provisions":1}`,
		`{"provisions":[],"provisions":[1]}`, `{"provisions":[1],"provisions":[]}`, `{"provisions":[1],"provisions":null}`,
		`{"provisions":[{"holder":"a"}],"provisions":3}`,
		`{"provisions":[1,{"holder":1}]}`, `{"provisions":[{"holder":"h","source":null,"resource":"r","quantity":1,"quantity":"x"}]}`,
		`{"provisions":[{"holder":"h","holder":2,"source":null,"resource":"r","quantity":1}]}`,
		`{"provisions":[{"holder":"h","source":"","resource":"r","quantity":-9223372036854775808}]}`,
		`{"provisions":[{"holder":"h","source":"s","resource":"r","quantity":-9223372036854775809}]}`,
		`{"provisions":[{"holder":"h","source":"s","resource":"r","quantity":9223372036854775807}]}`,
		`{"provisions":[{"holder":"h","source":"s","resource":"r","quantity":9223372036854775808}]}`,
		`{"provisions":[{"holder":"h","source":"s","resource":"r","quantity":1.0}]}`,
		`{"provisions":[{"holder":"h","source":"s","resource":"r","quantity":1e2}]}`,
		`{"provisions":[{"holder":"h","source":"s","resource":"r","quantity":-0}]}`,
		`{"provisions":[{"holder":"h","source":"s","resource":"r","quantity":"1"}]}`,
		`{"provisions":[{"holder":"h","source":"s","resource":"r"}]}`,
		`{"provisions":[{"holder":"h","resource":"r","quantity":1}]}`,
		`{"provisions":[{"holder":"h","source":1,"resource":"r","quantity":1}]}`,
		`{"provisions":[{"holder":"h","source":null,"resource":null,"quantity":1}]}`,
		`{"provisions":[{"holder":"\u0068\"\\\/\b\f\n\r\t","source":"\ud800","resource":"é","quantity":1}]}`,
		`{"provisions":[{"ho\u006cder":"h","source":null,"resource":"r","quantity":1}]}`,
		`{"provi\u0073ions":[],"n\u0061me":"x"}`,
		`{"provisions":[{"holder":"","source":null,"resource":"r","quantity":1}]}`,
		`{"provisions":[{"holder":"0123456789abcdefX","source":null,"resource":"r","quantity":1}]}`,
		`{"provisions":[{"holder":"h","source":null,"resource":"r","quantity":1},{"holder":"h","source":null,"resource":"r","quantity":1},` +
			`{"holder":"h","source":null,"resource":"r","quantity":1},{"holder":"h","source":null,"resource":"r","quantity":1},` +
			`{"holder":"h","source":null,"resource":"r","quantity":1}]}`,
		`{"provisions":[],"force":null}`, `{"provisions":[],"force":"true"}`, `{"provisions":[],"auto_accept":1}`,
		`{"provisions":[],"name":null}`, `{"provisions":[],"name":"0123456789abcdefX"}`, `{"provisions":[],"name":"\u00e9"}`,
		`{"provisions":[],"ttl":null}`, `{"provisions":[],"ttl":-1}`, `{"provisions":[],"ttl":1.5}`, `{"provisions":[],"ttl":"1"}`,
		`{"provisions":[],"ttl":316224001}`, `{"provisions":[],"ttl":99999999999999999999}`,
		`{"provisions":[],"idempotency_key":null}`, `{"provisions":[],"idempotency_key":5}`,
		`{"provisions":[],"idempotency_key":"0123456789abcdefX"}`,
		`{"provisions":[],"ttl":1,"ttl":"x"}`, `{"provisions":[],"ttl":"x","ttl":1}`, `{"provisions":[],"ttl":-9223372036854775808}`,
		`{"provisions":[],"name":"a","name":1,"force":true,"force":null,"auto_accept":1,"auto_accept":false}`,
		`{"provisions":[],"name":1,"name":"b","force":null,"force":true,"auto_accept":false,"auto_accept":1}`,
		`{"provisions":[],"idempotency_key":"a","idempotency_key":null}`, `{"provisions":[],"idempotency_key":1,"idempotency_key":"b"}`,
		`{"provisions":[],"x":{"y":[1,2,{"z":null}],"w":"\u0000"},"v":[[[]]],"u":-1.5e-3,"t":true,"s":false}`,
		`{"accept":""}`, `{"reject":null}`, `{"accept":1,"reject":2}`, `{}`, `{"accept":"","reason":"why"}`,
		`{"accept":"","reason":7}`, `{"reject":"","reason":"0123456789abcdefX"}`, `{"accept":"","reason":"\ud800"}`,
		`{"accept":[1],"reject":[2]}`, `{"accept":[3,3,4],"reject":[4,5],"reason":"why"}`, `{"accept":[],"reject":[]}`,
		`{"accept":[0,-1,999999],"reject":[-1]}`, `{"accept":[18446744073709551615]}`, `{"accept":[9223372036854775808]}`,
		`{"accept":[1.0]}`, `{"accept":["1"]}`, `{"accept":1}`, `{"accept":null}`, `{"reject":{}}`,
		`{"accept":[1,"x",1e400]}`, `{"accept":[1e400,"x"]}`, `{"accept":[1],"accept":"x"}`, `{"accept":"x","accept":[1]}`,
		`{"accept":[1],"reject":"x"}`, `{"accept":"x","reject":[1e999]}`,
		`{"accept":[-9223372036854775808],"reject":[-9223372036854775809]}`, `{"reject":[9223372036854775807,-0]}`,
		`{"accept":"","reason":"a","reason":1}`, `{"accept":"","reason":1,"reason":"b"}`, `{"accept":"","accept":"","reject":""}`,
		// Not objects, broken objects, and what follows the object.
		``, ` `, "\t\r\n", `[]`, `null`, `""`, `1`, `{`, `}`, `{}}`, `{}]`, `{} }x`, `{}x`, `{} 1`, `{"a":1}{"b":2}`,
		`[1]]`, `"x" }`, `1 ]`, `[1] x`, `{"provisions":[]}` + "\x00", `{"a":1,}`, `{"a":[1,]}`, `{"a" 1}`, `{"a":}`, `{,}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":falsey}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":1e+}`, `{"a":.5}`,
		`{"a":+1}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x01\"}", `{"a":"`, `{"a":"\`, `{"a":[`,
		`{"a":{"b":}}`, `{"a":[}`, `{"a":{]}`, `{1:2}`, `{"a":1 "b":2}`, `{"accept":""`, `{"provisions":[{]}`,
		"\xef\xbb\xbf{}", "{\"provisions\":[],\"name\":\"\xff\"}", "{\"a\xff\":1}", "{\"accept\":\"\",\"reason\":\"\xfe\"}",
		strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
		`{"x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `,"provisions":[]}`,
		`{"x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `,"provisions":[]}`,
		`{"provisions":[{"x":` + strings.Repeat("[", maxDepth-3) + strings.Repeat("]", maxDepth-3) + `}]}`,
		`{"provisions":[{"x":` + strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2) + `}]}`,
	}
	var out [][]byte
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	for _, dir := range []string{"FuzzAstakosIssue", "FuzzAstakosResolveMany"} {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if lit, ok := strings.CutPrefix(line, "[]byte("); ok {
					v, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					out = append(out, []byte(v))
				}
			}
		}
	}
	return out
}

// TestCommissionBodies checks the decoders against the reference on the
// seeds, with and without an Idempotency-Key.
func TestCommissionBodies(t *testing.T) {
	s := bodyServer()
	for _, body := range bodySeeds(t) {
		for _, key := range []string{"", "k1", "0123456789abcdefX", "\xff"} {
			checkIssueBody(t, s, body, key)
		}
		checkActionBody(t, s, body)
	}
}

// FuzzCommissionBodies checks the decoders against the reference on
// arbitrary bodies (valid UTF-8 or not: the decoders do not rely on
// readBody's check).
func FuzzCommissionBodies(f *testing.F) {
	for _, body := range bodySeeds(f) {
		if len(body) < 1<<10 { // not the deep ones: the fuzzer would spend its time minimising them
			f.Add(body, "")
		}
	}
	f.Add([]byte(`{"provisions":[],"idempotency_key":"a"}`), "b")
	s := bodyServer()
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		checkIssueBody(t, s, body, key)
		checkActionBody(t, s, body)
	})
}

// BenchmarkParseIssue reads the §7 workload's issue body (4 provisions)
// with the decoder and with the reference. Run:
//
//	go test ./api -run '^$' -bench BenchmarkParseIssue -benchmem
func BenchmarkParseIssue(b *testing.B) {
	body := []byte(`{"provisions":[` +
		`{"holder":"user:17","source":"project:17","resource":"cyclades.vm","quantity":1},` +
		`{"holder":"project:17","source":null,"resource":"cyclades.vm","quantity":1},` +
		`{"holder":"user:17","source":"project:17","resource":"cyclades.ram","quantity":512},` +
		`{"holder":"project:17","source":null,"resource":"cyclades.ram","quantity":512}]}`)
	s := New(nil, nil, Options{})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := s.parseIssue(body, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := refParseIssue(s, body, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
