package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
	"gopkg.in/yaml.v3"
)

// The configuration file (--config FILE, or QUOTALEDGER_CONFIG) is YAML: a
// mapping of flag names (without the dashes) to values, written as they
// would be on the command line, e.g.
//
//	listen: 127.0.0.1:8080
//	data: /var/lib/quotaledger
//	nats-url: nats://nats.example.com:4222
//	shutdown-timeout: 45s
//	demo: false
//
// A value is taken for a flag that is neither on the command line nor in
// its environment variable: flag > environment > file > default. One file
// may hold the flags of several commands (serve's, and --url of the
// operator's commands); each command takes the keys it has. A key that no
// command has, a value that is not a single scalar, or a value its flag
// refuses stops the program with a message that names the key.

// maxConfigSize caps the configuration file.
const maxConfigSize = 1 << 20

// configFlag is the name of the flag (and of its environment variable,
// QUOTALEDGER_CONFIG) that names the file.
const configFlag = "config"

// configFile is a loaded configuration file.
type configFile struct {
	path   string
	values map[string]string // key -> its scalar text
	line   map[string]int
	kctx   *kong.Context // the parse, for the flags of the command run
}

// loadConfig reads and parses a configuration file.
func loadConfig(path string) (*configFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("config file %s: larger than %d bytes", path, maxConfigSize)
	}
	return parseConfig(path, data)
}

func parseConfig(path string, data []byte) (*configFile, error) {
	c := &configFile{path: path, values: map[string]string{}, line: map[string]int{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file
			return c, nil
		}
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: one YAML document expected", path)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return c, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s: line %d: a mapping of flag names to values expected", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s: line %d: a key must be a flag name", path, k.Line)
		}
		key := k.Value
		if _, dup := c.values[key]; dup {
			return nil, fmt.Errorf("config file %s: line %d: key %q given twice", path, k.Line, key)
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s: line %d: key %q: a single value expected", path, v.Line, key)
		}
		val := v.Value
		if v.Tag == "!!null" {
			val = ""
		}
		c.values[key] = val
		c.line[key] = k.Line
	}
	return c, nil
}

// where names a key and its line for messages.
func (c *configFile) where(key string) string {
	return fmt.Sprintf("config file %s: line %d: key %q", c.path, c.line[key], key)
}

// Validate refuses keys that no command of the application has.
func (c *configFile) Validate(app *kong.Application) error {
	known := map[string]bool{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			known[f.Name] = true
		}
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	walk(app.Node)
	delete(known, configFlag)
	delete(known, "help")
	var unknown []string
	for k := range c.values {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	if c.kctx == nil {
		return fmt.Errorf("%s: unknown key (the keys are the flags without dashes)", c.where(unknown[0]))
	}
	var names []string
	for _, f := range c.kctx.Flags() {
		if f.Name != configFlag && f.Name != "help" {
			names = append(names, f.Name)
		}
	}
	sort.Strings(names)
	return fmt.Errorf("%s: unknown key (the keys of %s are its flags without dashes: %s)",
		c.where(unknown[0]), strings.TrimSpace("quotaledger "+c.kctx.Command()), strings.Join(names, ", "))
}

// Resolve gives a flag its value from the file, unless its environment
// variable is set (kong applies the environment before resolvers, which
// would otherwise win over it). The value is checked here, so that a bad
// one is reported with its key.
func (c *configFile) Resolve(kctx *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	c.kctx = kctx
	v, ok := c.values[flag.Name]
	if !ok || flag.Name == configFlag {
		return nil, nil
	}
	for _, env := range flag.Envs {
		if _, set := os.LookupEnv(env); set {
			return nil, nil
		}
	}
	target := reflect.New(flag.Target.Type()).Elem()
	if err := flag.Parse(kong.ScanFromTokens(kong.Token{Type: kong.FlagValueToken, Value: v}), target); err != nil {
		return nil, fmt.Errorf("%s: %w", c.where(flag.Name), err)
	}
	if flag.Enum != "" && !slices.Contains(flag.EnumSlice(), v) {
		return nil, fmt.Errorf("%s: %q is not one of %s", c.where(flag.Name), v, strings.Join(flag.EnumSlice(), ", "))
	}
	return v, nil
}

// configOption loads the configuration file named by --config or
// QUOTALEDGER_CONFIG, if any, before kong resolves the flags, and adds it
// as a resolver. A file that cannot be read or parsed stops the parse.
func configOption() kong.Option {
	loaded := false
	return kong.WithBeforeResolve(func(kctx *kong.Context) error {
		if loaded { // the hook runs once for each element of the path
			return nil
		}
		loaded = true
		var path string
		for _, f := range kctx.Flags() {
			if f.Name == configFlag {
				path, _ = kctx.FlagValue(f).(string)
			}
		}
		if path == "" {
			return nil
		}
		c, err := loadConfig(kong.ExpandPath(path))
		if err != nil {
			return err
		}
		kctx.AddResolver(c)
		return nil
	})
}
