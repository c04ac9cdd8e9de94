package main

import (
	"maps"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParseConfig decodes arbitrary configuration files (issue 17): it
// never panics; a refusal names the file; a file taken is a mapping of
// keys to single values, each with the line it is on, and the same keys
// and values written back as YAML decode the same.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"listen: 127.0.0.1:8080\ndata: /var/lib/quotaledger\nnats-url: nats://nats.example.com:4222\nshutdown-timeout: 45s\ndemo: false\n",
		"",
		"~\n",
		"# only a comment\n",
		"a: &x 1\nb: *x\n",
		"a: [1, 2]\n",
		"a: {b: c}\n",
		"a: 1\na: 2\n",
		"- a\n- b\n",
		"a: 1\n---\nb: 2\n",
		"? [a]\n: b\n",
		"a: ~\nb: null\nc: \"\"\nd: !!binary aGVsbG8=\n",
		"<<: {a: 1}\n",
		"\"~\": x\n'<<': y\n",
		"a: |\n  two\n  lines\n",
		"\xff: \xfe\n",
		"a: \"\\x00\"\n",
		"*x: 1\n",
		"a: &x [*x]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig("q.yaml", data)
		if err != nil {
			if c != nil || !strings.HasPrefix(err.Error(), "config file q.yaml: ") {
				t.Fatalf("refusal %v (config %+v)", err, c)
			}
			return
		}
		if len(c.values) != len(c.line) {
			t.Fatalf("values %v, lines %v", c.values, c.line)
		}
		for k := range c.values {
			if c.line[k] < 1 {
				t.Fatalf("key %q without its line: %v", k, c.line)
			}
		}
		out, err := yaml.Marshal(c.values)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseConfig("again.yaml", out)
		if err != nil {
			t.Fatalf("the values written back: %v\n%s", err, out)
		}
		if !maps.Equal(c.values, again.values) {
			t.Fatalf("the values written back decode as %q, not %q\n%s", again.values, c.values, out)
		}
	})
}
