package backup

import (
	"archive/tar"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/ledger"
)

// Limits of an archive Read takes.
const (
	maxFiles    = 100_000
	maxManifest = 1 << 20
	maxFile     = 64 << 30  // one file of the checkpoint
	maxTotal    = 256 << 30 // all of them
)

// Read reads an archive to its end, checking its layout and limits, and
// calls file (if not nil) with the base name of each checkpoint file and
// its content, which file may read in full or not at all. It returns the
// manifest once every file it lists was found with its size and the
// gzip checksum holds: an archive cut short is an error.
func Read(r io.Reader, file func(name string, r io.Reader) error) (Manifest, error) {
	var m Manifest
	gz, err := gzip.NewReader(r)
	if err != nil {
		return m, err
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil {
		return m, fmt.Errorf("no manifest: %w", err)
	}
	if h.Name != ManifestName || h.Typeflag != tar.TypeReg || h.Size > maxManifest {
		return m, fmt.Errorf("the first entry is %q, not the manifest %s", h.Name, ManifestName)
	}
	if err := json.NewDecoder(io.LimitReader(tr, maxManifest)).Decode(&m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if m.Format < 1 || m.Format > Format {
		return m, fmt.Errorf("archive format %d; this quotaledger reads formats 1 to %d", m.Format, Format)
	}
	if len(m.Files) == 0 || len(m.Files) > maxFiles {
		return m, fmt.Errorf("the manifest lists %d files", len(m.Files))
	}
	seen := make(map[string]bool, len(m.Files))
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, err
		}
		if h.Typeflag == tar.TypeDir && (h.Name == LedgerDir+"/" || h.Name == LedgerDir+"/"+JournalDir+"/") {
			continue
		}
		name, ok := strings.CutPrefix(h.Name, LedgerDir+"/")
		if !ok || !safeName(strings.TrimPrefix(name, JournalDir+"/")) {
			return m, fmt.Errorf("entry %q is outside %s/", h.Name, LedgerDir)
		}
		if h.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("entry %q is not a regular file", h.Name)
		}
		want, listed := m.Files[name]
		switch {
		case !listed:
			return m, fmt.Errorf("entry %q is not in the manifest", h.Name)
		case seen[name]:
			return m, fmt.Errorf("entry %q comes twice", h.Name)
		case h.Size != want || h.Size < 0 || h.Size > maxFile:
			return m, fmt.Errorf("entry %q has %d bytes, the manifest says %d", h.Name, h.Size, want)
		}
		if total += h.Size; total > maxTotal {
			return m, fmt.Errorf("the archive unpacks to more than %d bytes", int64(maxTotal))
		}
		seen[name] = true
		if file != nil {
			if err := file(name, io.LimitReader(tr, h.Size)); err != nil {
				return m, err
			}
		}
		// Whatever file did not read is read here, for the checksums.
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return m, err
		}
	}
	if len(seen) != len(m.Files) {
		return m, fmt.Errorf("%d of the %d files of the manifest are missing", len(m.Files)-len(seen), len(m.Files))
	}
	// The gzip trailer (CRC and size) is checked at its end.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return m, err
	}
	return m, gz.Close()
}

// safeName reports whether name is one plain file name: no separator, not
// "." or "..", printable ASCII of the kinds Pebble uses.
func safeName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Restore rebuilds the ledger of the data directory dataDir
// (dataDir/ledger) from the archive r, offline: no server may use it. It
// refuses a dataDir/ledger that is not empty, unpacks the archive beside it
// (through Read's checks), moves it into place, and opens it once to check
// that it is the ledger the manifest names; a restored ledger that does
// not open is removed again. It returns the manifest and the bytes
// written.
func Restore(r io.Reader, dataDir string) (Manifest, int64, error) {
	dest := filepath.Join(dataDir, LedgerDir)
	if entries, err := os.ReadDir(dest); err == nil && len(entries) > 0 {
		return Manifest{}, 0, fmt.Errorf("%s is not empty: restore into a new data directory, or move it away first", dest)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Manifest{}, 0, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Manifest{}, 0, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	tmp := filepath.Join(dataDir, ".restore-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return Manifest{}, 0, err
	}
	placed := false
	defer func() {
		if !placed {
			_ = os.RemoveAll(tmp)
		}
	}()
	var total int64
	m, err := Read(r, func(name string, r io.Reader) error {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tmp, name)), 0o700); err != nil {
			return err
		}
		out, err := os.OpenFile(filepath.Join(tmp, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		n, err := io.Copy(out, r)
		total += n
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return m, total, err
	}
	syncDir(filepath.Join(tmp, JournalDir))
	syncDir(tmp)
	// An empty dataDir/ledger (checked above) gives way to the restored one.
	if err := os.Remove(dest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return m, total, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return m, total, err
	}
	placed = true
	syncDir(dataDir)

	// Opened as a follower: a check that writes nothing (a single node would
	// expire what is due; a cluster's node must not write its own records).
	l, err := ledger.Open(ledger.Options{Dir: dest, Logger: zerolog.Nop(), Follower: true})
	if err != nil {
		_ = os.RemoveAll(dest)
		return m, total, fmt.Errorf("the restored ledger does not open (removed again): %w", err)
	}
	id := l.ID()
	if err := l.Close(); err != nil {
		return m, total, err
	}
	if id != m.LedgerID {
		return m, total, fmt.Errorf("the restored ledger is %s, the manifest says %s", id, m.LedgerID)
	}
	return m, total, nil
}

// RestoreAsNew is Restore under a new ledger id, for a server started from
// a backup (quotaledger restore): an event's id is the ledger's id and its
// sequence, so a restored copy keeping the original's id would publish,
// past the backup's last event, ids the original (or another copy of the
// same backup) also publishes, with other events behind them; the stream's
// duplicate window would drop some as repeats, and a consumer could not
// tell them apart. Under the new id the restored outbox is published again
// (at least once, as always). Restore itself keeps the id: a cluster's
// node restores the cluster's checkpoint, whose id is the cluster's
// (cluster.RestoreCheckpoint). It returns the manifest (the archive's id),
// the new id and the bytes written.
func RestoreAsNew(r io.Reader, dataDir string) (Manifest, string, int64, error) {
	m, n, err := Restore(r, dataDir)
	if err != nil {
		return m, "", n, err
	}
	// Opened as a follower, as Restore's check: it writes nothing but the id.
	l, err := ledger.Open(ledger.Options{Dir: filepath.Join(dataDir, LedgerDir), Logger: zerolog.Nop(), Follower: true, NewID: true})
	if err != nil {
		return m, "", n, fmt.Errorf("giving the restored ledger a new id: %w", err)
	}
	id := l.ID()
	if err := l.Close(); err != nil {
		return m, "", n, err
	}
	return m, id, n, nil
}

// syncDir makes a rename or a new file in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Save writes an archive to the file path: fill writes it into a
// temporary file beside path (mode 0600), which is synced and checked whole
// with Read before it takes the name, so that path is never a partial
// archive (a stream the server cut short fails gzip's or tar's checks). It
// returns the manifest and the archive's size.
func Save(path string, fill func(w io.Writer) error) (Manifest, int64, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return Manifest{}, 0, err
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return Manifest{}, 0, err
	}
	cw := &countWriter{w: tmp}
	if err := fill(cw); err != nil {
		return Manifest{}, cw.n, err
	}
	if err := tmp.Sync(); err != nil {
		return Manifest{}, cw.n, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return Manifest{}, cw.n, err
	}
	m, err := Read(tmp, nil)
	if err != nil {
		return m, cw.n, fmt.Errorf("the archive is not whole: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return m, cw.n, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return m, cw.n, err
	}
	done = true
	syncDir(dir)
	return m, cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
