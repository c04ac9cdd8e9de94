package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/backup"
)

// BackupCmd is `quotaledger backup`: it asks the running server for a
// consistent checkpoint of the ledger (GET /account/v1.0/backup, an admin
// token) and writes the archive to --to.
type BackupCmd struct {
	To    string `name:"to" required:"" placeholder:"FILE" help:"Where to write the archive (a tar.gz); written to a temporary file beside it, checked, then renamed (mode 0600)."`
	URL   string `name:"url" default:"http://127.0.0.1:8080" env:"QUOTALEDGER_URL" help:"The server's base URL (default ${default})."`
	Token string `name:"token" env:"QUOTALEDGER_TOKEN" help:"An admin token (default: the token file of quotaledger login)."`
	CACertFlag
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
it once to check it, and gives it a new ledger id: its events (an event's id
is the ledger's id and its sequence) do not collide with those of the
original or of another server restored from the same backup; the events its
outbox held are published again under the new id. Then quotaledger serve
--data DIR serves the restored state; the admin token of the backed-up server
works on it.`
}

// Run writes the backup.
func (cmd *BackupCmd) Run(ctx context.Context, s *streams) error {
	stdout := s.Stdout
	opts, err := cmd.clientOptions(client.Options{})
	if err != nil {
		return err
	}
	c, err := client.New(cmd.URL, cmd.Token, opts)
	if err != nil {
		return err
	}
	if c.Token() == "" {
		return errors.New("no token: pass --token, set QUOTALEDGER_TOKEN, or log in (quotaledger login)")
	}
	m, n, err := backup.Save(cmd.To, func(w io.Writer) error {
		_, err := c.Backup(ctx, w)
		return err
	})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup of ledger %s at %s: %d files, %d bytes in %s\n",
		m.LedgerID, m.Time.Format("2006-01-02T15:04:05Z"), len(m.Files), n, cmd.To)
	return nil
}

// Run restores the backup.
func (cmd *RestoreCmd) Run(s *streams) error {
	stdout := s.Stdout
	f, err := os.Open(cmd.From)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	m, id, n, err := backup.RestoreAsNew(f, cmd.Data)
	if err != nil {
		return fmt.Errorf("restore: %s: %w", cmd.From, err)
	}
	fmt.Fprintf(stdout, "restored ledger %s as of %s into %s as ledger %s (%d files, %d bytes)\n",
		m.LedgerID, m.Time.Format("2006-01-02T15:04:05Z"), filepath.Join(cmd.Data, backup.LedgerDir), id, len(m.Files), n)
	return nil
}
