package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/ledger"
)

// BackupCmd is `quotaledger backup`: it asks the running server for a
// consistent checkpoint of the ledger (GET /account/v1.0/backup, an admin
// token) and writes the archive to --to.
type BackupCmd struct {
	To    string `name:"to" required:"" placeholder:"FILE" help:"Where to write the archive (a tar.gz); written to a temporary file beside it, checked, then renamed (mode 0600)."`
	URL   string `name:"url" default:"http://127.0.0.1:8080" env:"QUOTALEDGER_URL" help:"The server's base URL (default ${default})."`
	Token string `name:"token" env:"QUOTALEDGER_TOKEN" help:"An admin token (default: the token file of quotaledger login)."`
}

// Help is the detail of `backup --help`.
func (c *BackupCmd) Help() string {
	return `The server makes a Pebble checkpoint of the ledger without stopping writes:
the archive holds exactly the calls answered before some instant during the
backup, and none after it. Users, tokens, services, holdings, commissions, the
provision log and the events not yet published are all in it; the embedded
NATS server's store and bootstrap.json are not. Restore it with
quotaledger restore --from FILE --data DIR.`
}

// RestoreCmd is `quotaledger restore`: it rebuilds a data directory from a
// backup archive, offline.
type RestoreCmd struct {
	From string `name:"from" required:"" placeholder:"FILE" help:"The archive quotaledger backup wrote."`
	Data string `name:"data" required:"" placeholder:"DIR" help:"The data directory to rebuild: the ledger goes to DIR/ledger, which must not exist or be empty."`
}

// Help is the detail of `restore --help`.
func (c *RestoreCmd) Help() string {
	return `Run it while no server uses DIR. It refuses a DIR/ledger that is not empty,
unpacks the archive beside it (regular files only, no path outside the
ledger directory, sizes capped), moves it into place as DIR/ledger, and opens
it once to check it. Then quotaledger serve --data DIR serves the restored
state; the admin token of the backed-up server works on it.`
}

// Limits of an archive restore reads.
const (
	maxBackupFiles    = 100_000
	maxBackupManifest = 1 << 20
	maxBackupFile     = 64 << 30  // one file of the checkpoint
	maxBackupTotal    = 256 << 30 // all of them
)

// Run writes the backup.
func (cmd *BackupCmd) Run(ctx context.Context, s *streams) error {
	stdout := s.Stdout
	c, err := client.New(cmd.URL, cmd.Token, client.Options{})
	if err != nil {
		return err
	}
	if c.Token() == "" {
		return errors.New("no token: pass --token, set QUOTALEDGER_TOKEN, or log in (quotaledger login)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL()+"/account/v1.0/backup", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", c.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("backup: the server answered %s: %s", resp.Status, faultMessage(b))
	}

	dir, base := filepath.Split(cmd.To)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	n, err := io.Copy(tmp, resp.Body)
	if err != nil {
		return fmt.Errorf("backup: receiving the archive: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// Check the whole archive before it takes the name: a stream cut short
	// (the server aborts on an error) fails gzip's or tar's checks here.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	m, err := readArchive(tmp, func(string, io.Reader) error { return nil })
	if err != nil {
		return fmt.Errorf("backup: the archive received is not whole: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), cmd.To); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done = true
	syncDir(dir)
	fmt.Fprintf(stdout, "backup of ledger %s at %s: %d files, %d bytes in %s\n",
		m.LedgerID, m.Time.Format("2006-01-02T15:04:05Z"), len(m.Files), n, cmd.To)
	return nil
}

// faultMessage is the message of a cloudFault body, or the body itself.
func faultMessage(b []byte) string {
	var f map[string]struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &f) == nil {
		for kind, v := range f {
			return kind + ": " + v.Message
		}
	}
	return strings.TrimSpace(string(b))
}

// readArchive reads a backup archive to its end, checking its layout and
// limits, and calls file with the base name of each checkpoint file and its
// content (which file must read in full, or not at all). It returns the
// manifest once every file it lists was found with its size.
func readArchive(r io.Reader, file func(name string, r io.Reader) error) (api.BackupManifest, error) {
	var m api.BackupManifest
	gz, err := gzip.NewReader(r)
	if err != nil {
		return m, err
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil {
		return m, fmt.Errorf("no manifest: %w", err)
	}
	if h.Name != api.BackupManifestName || h.Typeflag != tar.TypeReg || h.Size > maxBackupManifest {
		return m, fmt.Errorf("the first entry is %q, not the manifest %s", h.Name, api.BackupManifestName)
	}
	if err := json.NewDecoder(io.LimitReader(tr, maxBackupManifest)).Decode(&m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if m.Format < 1 || m.Format > api.BackupFormat {
		return m, fmt.Errorf("archive format %d; this quotaledger reads formats 1 to %d", m.Format, api.BackupFormat)
	}
	if len(m.Files) == 0 || len(m.Files) > maxBackupFiles {
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
		if h.Typeflag == tar.TypeDir && (h.Name == api.BackupLedgerDir+"/" || h.Name == api.BackupLedgerDir+"/journal/") {
			continue
		}
		name, ok := strings.CutPrefix(h.Name, api.BackupLedgerDir+"/")
		if !ok || !safeName(strings.TrimPrefix(name, "journal/")) {
			return m, fmt.Errorf("entry %q is outside %s/", h.Name, api.BackupLedgerDir)
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
		case h.Size != want || h.Size < 0 || h.Size > maxBackupFile:
			return m, fmt.Errorf("entry %q has %d bytes, the manifest says %d", h.Name, h.Size, want)
		}
		if total += h.Size; total > maxBackupTotal {
			return m, fmt.Errorf("the archive unpacks to more than %d bytes", int64(maxBackupTotal))
		}
		seen[name] = true
		if err := file(name, io.LimitReader(tr, h.Size)); err != nil {
			return m, err
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

// Run restores the backup.
func (cmd *RestoreCmd) Run(s *streams) error {
	stdout := s.Stdout
	dest := filepath.Join(cmd.Data, api.BackupLedgerDir)
	if entries, err := os.ReadDir(dest); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore: %s is not empty: restore into a new data directory, or move it away first", dest)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	f, err := os.Open(cmd.From)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(cmd.Data, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	tmp := filepath.Join(cmd.Data, ".restore-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	placed := false
	defer func() {
		if !placed {
			_ = os.RemoveAll(tmp)
		}
	}()
	var total int64
	m, err := readArchive(f, func(name string, r io.Reader) error {
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
		return fmt.Errorf("restore: %s: %w", cmd.From, err)
	}
	syncDir(filepath.Join(tmp, "journal"))
	syncDir(tmp)
	// An empty DIR/ledger (checked above) gives way to the restored one.
	if err := os.Remove(dest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	placed = true
	syncDir(cmd.Data)

	l, err := ledger.Open(ledger.Options{Dir: dest, Logger: zerolog.Nop()})
	if err != nil {
		_ = os.RemoveAll(dest)
		return fmt.Errorf("restore: the restored ledger does not open (removed again): %w", err)
	}
	id := l.ID()
	if err := l.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if id != m.LedgerID {
		return fmt.Errorf("restore: the restored ledger is %s, the manifest says %s", id, m.LedgerID)
	}
	fmt.Fprintf(stdout, "restored ledger %s as of %s into %s (%d files, %d bytes)\n",
		id, m.Time.Format("2006-01-02T15:04:05Z"), dest, len(m.Files), total)
	return nil
}

// syncDir makes a rename or a new file in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
