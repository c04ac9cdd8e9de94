package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestRoundTrip writes an archive of a ledger, saves it, restores it into
// a new data directory and opens the ledger there.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	l := ledgertest.Open(t, ledger.Options{Dir: filepath.Join(t.TempDir(), "ledger")})
	k := holdings.Key{Holder: "h", Source: holdings.SourceOf("s"), Resource: "r"}
	if err := l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 42}}); err != nil {
		t.Fatal(err)
	}
	var began *Manifest
	var buf bytes.Buffer
	if err := Write(&buf, l, func(m Manifest) error {
		if buf.Len() != 0 {
			t.Error("begin was called after the first byte")
		}
		began = &m
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if began == nil || began.Format != Format || began.LedgerID != l.ID() || len(began.Files) == 0 {
		t.Fatalf("begin's manifest %+v", began)
	}
	archive := buf.Bytes()

	// Save keeps a whole archive under its name, mode 0600.
	path := filepath.Join(t.TempDir(), "b.tar.gz")
	m, n, err := Save(path, func(w io.Writer) error { _, err := w.Write(archive); return err })
	if err != nil || n != int64(len(archive)) || m.LedgerID != l.ID() {
		t.Fatalf("save: %+v %d %v", m, n, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved archive: %v %v", fi, err)
	}

	data := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rm, _, err := Restore(f, data)
	if err != nil {
		t.Fatal(err)
	}
	if rm.LedgerID != l.ID() {
		t.Fatalf("restored manifest %+v", rm)
	}
	r := ledgertest.Open(t, ledger.Options{Dir: filepath.Join(data, LedgerDir)})
	if v, ok := r.FindHoldingByKey(k); !ok || v.Limit != 42 || r.ID() != l.ID() {
		t.Fatalf("restored holding %+v %v", v, ok)
	}
	// Again into the same directory: refused, nothing changed.
	if _, _, err := Restore(bytes.NewReader(archive), data); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over a ledger: %v", err)
	}

	// An archive cut anywhere is refused by Read, and Save keeps no file.
	for _, cut := range []int{10, len(archive) / 2, len(archive) - 1} {
		if _, err := Read(bytes.NewReader(archive[:cut]), nil); err == nil {
			t.Errorf("an archive cut at %d of %d bytes was read", cut, len(archive))
		}
		p := filepath.Join(t.TempDir(), "cut.tar.gz")
		if _, _, err := Save(p, func(w io.Writer) error { _, err := w.Write(archive[:cut]); return err }); err == nil {
			t.Errorf("an archive cut at %d was saved", cut)
		}
		if left, _ := os.ReadDir(filepath.Dir(p)); len(left) != 0 {
			t.Errorf("a refused save left %v", left)
		}
	}
	// A failing fill keeps no file either.
	boom := errors.New("boom")
	p := filepath.Join(t.TempDir(), "x.tar.gz")
	if _, _, err := Save(p, func(w io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("save with a failing fill: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Dir(p)); len(left) != 0 {
		t.Errorf("a failed save left %v", left)
	}
}

// TestWriteBeginFails checks that an error of begin stops the archive
// before its first byte.
func TestWriteBeginFails(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{Dir: filepath.Join(t.TempDir(), "ledger")})
	boom := errors.New("boom")
	var buf bytes.Buffer
	if err := Write(&buf, l, func(Manifest) error { return boom }); !errors.Is(err, boom) || buf.Len() != 0 {
		t.Fatalf("write: %v, %d bytes", err, buf.Len())
	}
}

// TestRestoreAsNew: a server restored from a backup gets a new ledger id,
// so that two restored from one backup (or one and the original) publish
// no colliding event ids (an event's id is the ledger's id and its
// sequence, and the copies' next events have the same sequences); the data
// is the backup's, and the id lasts. Restore keeps the id (a cluster
// node's restore of the cluster's checkpoint: TestRoundTrip).
func TestRestoreAsNew(t *testing.T) {
	ctx := context.Background()
	l := ledgertest.Open(t, ledger.Options{Dir: filepath.Join(t.TempDir(), "ledger")})
	k := holdings.Key{Holder: "h", Source: holdings.SourceOf("s"), Resource: "r"}
	if err := l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 42}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, l, nil); err != nil {
		t.Fatal(err)
	}
	next := func(l *ledger.Ledger) uint64 {
		t.Helper()
		if err := l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 7}}); err != nil {
			t.Fatal(err)
		}
		st, err := l.OutboxStats()
		if err != nil {
			t.Fatal(err)
		}
		return st.Last
	}
	ids := map[string]bool{l.ID(): true}
	var seqs []uint64
	for range 2 {
		data := t.TempDir()
		m, id, _, err := RestoreAsNew(bytes.NewReader(buf.Bytes()), data)
		if err != nil || m.LedgerID != l.ID() || id == "" || ids[id] {
			t.Fatalf("restore as new: %+v %q %v (ids so far %v)", m, id, err, ids)
		}
		ids[id] = true
		dir := filepath.Join(data, LedgerDir)
		r, err := ledger.Open(ledger.Options{Dir: dir, Logger: zerolog.Nop(), NoFreeSpaceCheck: true})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := r.FindHoldingByKey(k); !ok || v.Limit != 42 || r.ID() != id {
			t.Fatalf("restored %q: holding %+v %v", r.ID(), v, ok)
		}
		seqs = append(seqs, next(r))
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		r = ledgertest.Open(t, ledger.Options{Dir: dir})
		if r.ID() != id {
			t.Fatalf("reopened: id %s, want %s", r.ID(), id)
		}
	}
	if orig := next(l); seqs[0] != orig || seqs[1] != orig {
		t.Fatalf("next events' sequences: copies %v, original %d", seqs, orig)
	}
}
