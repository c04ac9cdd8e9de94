package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/holdings"
)

// TestKeyValidationMessages checks that the API refuses the keys and
// commissions holdings refuses, each route family in its own words (the
// Astakos issue keeps the lineage's "Malformed provision" messages).
func TestKeyValidationMessages(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", holdings.MaxNameLen+1)
	ok := strings.Repeat("x", holdings.MaxNameLen)
	prov := func(holder, source, resource string) string {
		return fmt.Sprintf(`{"holder":%q,"source":%q,"resource":%q,"quantity":0}`, holder, source, resource)
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"EmptyHolder", `{"provisions":[` + prov("", "s", "r") + `]}`, `Malformed provision 0: "holder" must not be empty`},
		{"EmptyResource", `{"provisions":[` + prov("h", "s", "r") + `,` + prov("h", "s", "") + `]}`, `Malformed provision 1: "resource" must not be empty`},
		{"LongHolder", `{"provisions":[` + prov(long, "s", "r") + `]}`, `Malformed provision 0: "holder" is longer than 512 bytes`},
		{"LongSource", `{"provisions":[` + prov("h", long, "r") + `]}`, `Malformed provision 0: "source" is longer than 512 bytes`},
		{"LongResource", `{"provisions":[` + prov("h", "s", long) + `]}`, `Malformed provision 0: "resource" is longer than 512 bytes`},
		{"TooMany", `{"provisions":[` + strings.TrimSuffix(strings.Repeat(prov("h", "s", "r")+",", holdings.MaxProvisions+1), ",") + `]}`,
			"a commission has at most 1000 provisions; this one has 1001"},
	} {
		t.Run("Issue"+tc.name, func(t *testing.T) {
			st, out := e.do("POST", "/account/v1.0/commissions", e.service, tc.body)
			if msg := fault(t, st, out, 400, "badRequest")["message"]; msg != tc.want {
				t.Fatalf("message %q, want %q", msg, tc.want)
			}
		})
	}
	// The longest parts are keys; the holding does not exist.
	st, out := e.do("POST", "/account/v1.0/commissions", e.service, `{"provisions":[`+prov(ok, ok, ok)+`]}`)
	fault(t, st, out, 404, "itemNotFound")

	for _, tc := range []struct {
		name, entry, want string
	}{
		{"EmptyHolder", `{"holder":"","resource":"r","limit":1}`, "holdings[1].holder must be a non-empty string"},
		{"NoResource", `{"holder":"h","limit":1}`, "holdings[1].resource must be a non-empty string"},
		{"LongSource", fmt.Sprintf(`{"holder":"h","source":%q,"resource":"r","limit":1}`, long), "holdings[1]: holder, source and resource are at most 512 bytes"},
	} {
		t.Run("Holdings"+tc.name, func(t *testing.T) {
			body := `{"holdings":[{"holder":"h","resource":"r","limit":1},` + tc.entry + `]}`
			if msg := restFault(t, e.restWant(400, "POST", restBase+"holdings", e.admin, body), "badRequest", 400); msg != tc.want {
				t.Fatalf("message %q, want %q", msg, tc.want)
			}
		})
	}
	e.restWant(200, "POST", restBase+"holdings", e.admin, fmt.Sprintf(`{"holdings":[{"holder":%q,"source":%q,"resource":%q,"limit":1}]}`, ok, ok, ok))
}
