package api

// The routes kept wire-compatible with Astakos (DESIGN.md §3) live in the
// astakos_*.go files, one per family of the lineage's API; this file holds
// what they share. Bodies are read the lineage's way: keys it did not read
// are ignored (it never refused them), but every key it read is
// type-checked, and a wrong one is a 400 that says what is wrong.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
)

func parseObject(b []byte) (map[string]json.RawMessage, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, notObject(b)
	}
	var m map[string]json.RawMessage
	if err := decodeJSON(b, &m, false); err != nil {
		return nil, err
	}
	return m, nil
}

// notObject is the fault of a body that is not a JSON object: empty, not
// JSON, or another JSON value. It is nil for a body json.Decoder reads as
// some value followed by a closing bracket (`[1]]`), which the lineage took
// for an empty object.
func notObject(b []byte) error {
	if len(bytes.TrimLeft(b, " \t\r\n")) == 0 {
		return newFault(http.StatusBadRequest, "request body is empty; a JSON object is expected")
	}
	if !json.Valid(b) {
		return decodeJSON(b, new(any), false)
	}
	return newFault(http.StatusBadRequest, "request body must be a JSON object")
}

// syntaxFault is the fault of a body that is a JSON object up to a syntax
// error: what encoding/json says of it, as parseObject answers.
func syntaxFault(b []byte) error {
	var m map[string]json.RawMessage
	if err := decodeJSON(b, &m, false); err != nil {
		return err
	}
	// The scanner refused what encoding/json takes: a bug of the scanner.
	return newFault(http.StatusBadRequest, "malformed JSON")
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// rawString decodes a JSON string; ok is false if raw is not one.
func rawString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// rawBool decodes a JSON true or false.
func rawBool(raw json.RawMessage) (v, ok bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// checkName checks a string of the request: valid UTF-8 and at most
// MaxNameLen bytes.
func (c *call) checkName(what, v string) error { return c.s.checkName(what, v) }

// checkName checks a string of the request: valid UTF-8 and at most
// MaxNameLen bytes.
func (s *Server) checkName(what, v string) error {
	if !utf8.ValidString(v) {
		return badRequest("%s is not valid UTF-8", what)
	}
	if len(v) > s.opts.MaxNameLen {
		return badRequest("%s is longer than %d bytes", what, s.opts.MaxNameLen)
	}
	return nil
}

// writeEmpty answers status with an empty body, as the lineage does for
// actions and feedback.
func (c *call) writeEmpty(status int) error {
	c.w.Header()["Content-Length"] = contentLength0
	c.w.WriteHeader(status)
	return nil
}

// contentLength0 is the Content-Length of an empty answer, set as
// contentTypeJSON is.
var contentLength0 = []string{"0"}

// pyRepr renders a holding key the way the lineage's messages showed it (a
// Python tuple).
func pyRepr(k holdings.Key) string {
	src := "None"
	if !k.Source.IsNull() {
		src = strconv.Quote(k.Source.Name())
	}
	return fmt.Sprintf("(%s, %s, %s)", strconv.Quote(k.Holder), src, strconv.Quote(k.Resource))
}

// commissionFault is faultOf with the messages of the lineage's
// quotaholder for its three errors; the data are faultOf's.
func commissionFault(err error) *Fault {
	f := faultOf(err)
	if q, ok := holdings.AsQuotaLimit(err); ok {
		p, _, _ := q.QuotaLimit()
		cp := *f
		switch q.Name() {
		case "NoQuantityError":
			cp.Message = fmt.Sprintf("%s attempts to release more %s than it contains.", p.Key.Holder, p.Key.Resource)
		default:
			cp.Message = fmt.Sprintf("%s has not enough capacity of %s.", p.Key.Holder, p.Key.Resource)
		}
		return &cp
	}
	var nh *holdings.NoHoldingError
	if errors.As(err, &nh) {
		cp := *f
		cp.Message = "There is no such holding " + pyRepr(nh.Provision.Key)
		return &cp
	}
	return f
}

// realName is the lineage's "realname": the display name, or first and last
// name, or the username.
func realName(u *identity.User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	if n := strings.TrimSpace(u.FirstName + " " + u.LastName); n != "" {
		return n
	}
	return u.Username
}

// roles are the groups of a user, as the lineage listed them.
func (s *Server) roles(u *identity.User) []wire.Role {
	out := []wire.Role{}
	for _, g := range every(s.id.FindGroups(identity.GroupFilter{})) {
		if slices.Contains(g.Members, u.UUID) {
			out = append(out, wire.Role{ID: g.Name, Name: g.Name})
		}
	}
	return out
}

// groupNames are the names of the groups of a user.
func (s *Server) groupNames(u *identity.User) []string {
	out := []string{}
	for _, r := range s.roles(u) {
		out = append(out, r.Name)
	}
	return out
}
