package api

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// The backup archive (GET /account/v1.0/backup, `quotaledger backup` and
// `quotaledger restore`) is one gzip-compressed tar stream:
//
//	quotaledger-backup.json   BackupManifest: format, ledger id, time, files
//	ledger/                   a directory entry
//	ledger/<name>             each file of a Pebble checkpoint of the ledger's state
//	ledger/journal/           a directory entry
//	ledger/journal/<name>     each file of a Pebble checkpoint of its journal
//
// Every entry but the directory is a regular file (mode 0600). The ledger
// directory is laid out as serve expects it under its data directory
// (DIR/ledger). Identity records, the outbox and the provision log all live
// in the ledger, so the archive is the whole durable state; NATS's own
// store (DIR/nats) and bootstrap.json are not in it.
const (
	// BackupFormat is the version of the archive layout: 2 adds the
	// journal's directory (ledger/journal/); format 1 archives are read too.
	BackupFormat = 2
	// BackupManifestName is the archive's first entry.
	BackupManifestName = "quotaledger-backup.json"
	// BackupLedgerDir is the directory of the checkpoint's files in the
	// archive, and of the ledger in a data directory.
	BackupLedgerDir = "ledger"
)

// BackupManifest is the first entry of a backup archive.
type BackupManifest struct {
	Format   int       `json:"format"`
	LedgerID string    `json:"ledger_id"`
	Time     time.Time `json:"time"`
	// Files are the names of the checkpoint's files, as found under
	// ledger/ in the archive, with their sizes.
	Files map[string]int64 `json:"files"`
}

func (s *Server) registerBackup() {
	s.handle("GET", "/account/v1.0/backup", User, identity.ActManageUsers,
		"a consistent checkpoint of the whole ledger, taken without stopping writes, streamed as one tar.gz archive (admins; quotaledger restore rebuilds a data directory from it)",
		s.backup)
}

// backup streams a checkpoint. Once the first byte is out an error cannot
// become a fault any more: the connection is then aborted, so that the
// client sees a truncated archive (gzip and tar both tell) and not a
// complete-looking one.
func (s *Server) backup(c *call) error {
	started := false
	err := s.l.WithCheckpoint(func(fs vfs.FS, dir string) error {
		names, dirs, err := checkpointFiles(fs, dir)
		if err != nil {
			return err
		}
		m := BackupManifest{Format: BackupFormat, LedgerID: s.l.ID(), Time: time.Now().UTC(),
			Files: make(map[string]int64, len(names))}
		for _, name := range names {
			fi, err := fs.Stat(path.Join(dir, name))
			if err != nil {
				return err
			}
			m.Files[name] = fi.Size()
		}
		manifest, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}

		// A large archive takes longer than the server's write timeout.
		if err := http.NewResponseController(c.w).SetWriteDeadline(time.Time{}); err != nil {
			s.log.Warn().Err(err).Msg("backup: the write deadline cannot be lifted; a large archive may be cut off by the server's write timeout")
		}
		h := c.w.Header()
		h.Set("Content-Type", "application/gzip")
		h.Set("Content-Disposition", `attachment; filename="quotaledger-`+m.Time.Format("20060102T150405Z")+`.tar.gz"`)
		h.Set("Cache-Control", "no-store")
		c.w.WriteHeader(http.StatusOK)
		started = true

		gz := gzip.NewWriter(c.w)
		tw := tar.NewWriter(gz)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: BackupManifestName,
			Size: int64(len(manifest)), Mode: 0o600, ModTime: m.Time}); err != nil {
			return err
		}
		if _, err := tw.Write(manifest); err != nil {
			return err
		}
		for _, d := range append([]string{""}, dirs...) {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path.Join(BackupLedgerDir, d) + "/",
				Mode: 0o700, ModTime: m.Time}); err != nil {
				return err
			}
		}
		for _, name := range names {
			if err := tarFile(tw, fs, path.Join(dir, name), BackupLedgerDir+"/"+name, m.Files[name], m.Time); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return gz.Close()
	})
	if err == nil {
		return nil
	}
	if started {
		s.log.Error().Err(err).Msg("backup failed while streaming; connection aborted")
		panic(http.ErrAbortHandler)
	}
	if errors.Is(err, ledger.ErrClosed) {
		return newFault(http.StatusServiceUnavailable, "the ledger is closed")
	}
	return err
}

// checkpointFiles lists the files of a checkpoint, sorted, by their paths
// under dir: its own, and those of its subdirectories (the journal's), one
// level down; dirs are those subdirectories.
func checkpointFiles(fs vfs.FS, dir string) (files, dirs []string, err error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		fi, err := fs.Stat(path.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		switch {
		case fi.Mode().IsRegular():
			files = append(files, name)
		case fi.IsDir():
			sub, err := fs.List(path.Join(dir, name))
			if err != nil {
				return nil, nil, err
			}
			sort.Strings(sub)
			dirs = append(dirs, name)
			for _, f := range sub {
				fi, err := fs.Stat(path.Join(dir, name, f))
				if err != nil {
					return nil, nil, err
				}
				if !fi.Mode().IsRegular() {
					return nil, nil, errors.New("backup: checkpoint entry " + name + "/" + f + " is not a regular file")
				}
				files = append(files, name+"/"+f)
			}
		default:
			return nil, nil, errors.New("backup: checkpoint entry " + name + " is not a regular file")
		}
	}
	return files, dirs, nil
}

// tarFile writes one file of the checkpoint; its size must not change.
func tarFile(tw *tar.Writer, fs vfs.FS, src, name string, size int64, mtime time.Time) error {
	f, err := fs.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: mtime}); err != nil {
		return err
	}
	n, err := io.Copy(tw, io.LimitReader(f, size))
	if err == nil && n != size {
		err = errors.New("backup: " + name + " shrank while being archived")
	}
	return err
}
