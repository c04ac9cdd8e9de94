package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/backup"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

func TestBackup(t *testing.T) {
	e := newEnv(t)
	k := holdings.Key{Holder: "h0", Source: holdings.SourceOf("system"), Resource: "r1"}
	if err := e.l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: k, Limit: 42}}); err != nil {
		t.Fatal(err)
	}
	if status, _ := e.doRaw("GET", "/account/v1.0/backup", "", nil); status != http.StatusUnauthorized {
		t.Errorf("no token: %d", status)
	}
	if status, _ := e.doRaw("GET", "/account/v1.0/backup", e.user, nil); status != http.StatusForbidden {
		t.Errorf("user token: %d", status)
	}
	if status, _ := e.doRaw("GET", "/account/v1.0/backup", e.service, nil); status != http.StatusForbidden {
		t.Errorf("service token: %d", status)
	}
	status, raw := e.doRaw("GET", "/account/v1.0/backup", e.admin, nil)
	if status != http.StatusOK {
		t.Fatalf("admin: %d %s", status, raw)
	}

	// Unpack into a fresh filesystem and open it as a ledger.
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	fs := vfs.NewMem()
	if err := fs.MkdirAll("/restored/ledger", 0o755); err != nil {
		t.Fatal(err)
	}
	var m backup.Manifest
	files := map[string]int64{}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i == 0:
			if h.Name != backup.ManifestName {
				t.Fatalf("first entry %q", h.Name)
			}
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				t.Fatal(err)
			}
		case h.Typeflag == tar.TypeDir:
			if h.Name != "ledger/" && h.Name != "ledger/journal/" {
				t.Errorf("directory entry %q", h.Name)
			}
			if err := fs.MkdirAll(path.Join("/restored", h.Name), 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			name, ok := strings.CutPrefix(h.Name, "ledger/")
			if !ok || h.Typeflag != tar.TypeReg || strings.Contains(strings.TrimPrefix(name, "journal/"), "/") {
				t.Fatalf("entry %q type %c", h.Name, h.Typeflag)
			}
			f, err := fs.Create("/restored/ledger/"+name, vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(f, tr)
			if err != nil {
				t.Fatal(err)
			}
			_ = f.Close()
			files[name] = n
		}
	}
	if m.Format != backup.Format || m.LedgerID != e.l.ID() || len(m.Files) == 0 {
		t.Errorf("manifest %+v", m)
	}
	for name, size := range m.Files {
		if files[name] != size {
			t.Errorf("%s: %d bytes in the archive, the manifest says %d", name, files[name], size)
		}
	}
	if len(files) != len(m.Files) {
		t.Errorf("%d files in the archive, %d in the manifest", len(files), len(m.Files))
	}
	l := ledgertest.Open(t, ledger.Options{Dir: "/restored/ledger", FS: fs})
	if v, ok := l.FindHoldingByKey(k); !ok || v.Limit != 42 {
		t.Errorf("restored holding: %+v %v", v, ok)
	}
}
