package testkit

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteHex writes b to path (making its directory) as a golden file: a
// comment line, "# what: N bytes, written by by", then b in hex, 32 bytes
// a line. by is the command that writes it ("go test ./ledger -run
// TestFormat -update").
func WriteHex(tb TB, path, what, by string, b []byte) {
	tb.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s: %d bytes, written by %s\n", what, len(b), by)
	h := hex.EncodeToString(b)
	for len(h) > 64 {
		sb.WriteString(h[:64] + "\n")
		h = h[64:]
	}
	sb.WriteString(h + "\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatalf("%v", err)
		return
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		tb.Fatalf("%v", err)
	}
}

// ReadHex reads a golden file of WriteHex (lines starting with '#' are
// comments). A file that cannot be read fails the test, saying to write it
// with by, the command given to WriteHex, and commit it.
func ReadHex(tb TB, path, by string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (a new golden file: %s, and commit it)", err, by)
		return nil
	}
	var h strings.Builder
	for line := range strings.SplitSeq(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			h.WriteString(line)
		}
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
		return nil
	}
	return b
}
