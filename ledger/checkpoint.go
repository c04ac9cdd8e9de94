package ledger

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/failure"
)

// Checkpoint writes a consistent copy of the ledger's databases into dir,
// which must not exist yet (its parent must). Writes go on meanwhile: the
// copy holds every batch committed before some instant during the call and
// none after it. Every record of the ledger lives in them, so the copy is a
// whole ledger: Open(Options{Dir: dir}) opens it, replaying the copy's
// journal into its state.
//
// The state database is flushed and copied first, then the journal (WAL
// flushed), with the journal's truncation held meanwhile, so the copied
// journal holds every record after the copied state's checkpoint. Files
// are hard-linked where the filesystem allows.
func (l *Ledger) Checkpoint(dir string) error {
	if dir == "" {
		return failure.Errorf(failure.Invalid, "a checkpoint needs a directory")
	}
	if l.Failed() != nil {
		// Flushing the WAL would write to it again (Pebble exits on that).
		return fmt.Errorf("checkpoint: %w", ErrFailed)
	}
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	err := l.readDB(func() error {
		if err := l.flushStateLocked(); err != nil {
			return err
		}
		if err := l.db.Checkpoint(dir); err != nil {
			return err
		}
		return l.jdb.Checkpoint(journalDir(dir), pebble.WithFlushedWAL())
	})
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("ledger: checkpoint to %s: %w", dir, err)
	}
	l.log.Info().Str("dir", dir).Msg("checkpoint made")
	return nil
}

// WithCheckpoint makes a checkpoint in a fresh directory beside the
// database (a sibling of Options.Dir, named .checkpoint-<random>, so that
// Pebble can hard-link its files instead of copying them), calls fn with the
// ledger's filesystem and that directory, and removes the directory, whatever
// fn returns. fn reads the files through fs (List, Open, Stat); they do not
// change while it runs.
func (l *Ledger) WithCheckpoint(fn func(fs vfs.FS, dir string) error) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(filepath.Dir(filepath.Clean(l.opts.Dir)), ".checkpoint-"+hex.EncodeToString(b[:]))
	fs := l.opts.FS
	defer func() {
		if err := fs.RemoveAll(dir); err != nil {
			l.log.Error().Err(err).Str("dir", dir).Msg("removing a checkpoint")
		}
	}()
	if err := l.Checkpoint(dir); err != nil {
		return err
	}
	return fn(fs, dir)
}
