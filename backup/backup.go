// Package backup writes and reads quotaledger's backup archive: a
// consistent checkpoint of the whole ledger as one gzip-compressed tar
// stream. The server's GET /account/v1.0/backup streams one (Write);
// `quotaledger backup` checks what it received (Read) and
// `quotaledger restore` rebuilds a data directory from it (Restore).
//
// The archive:
//
//	quotaledger-backup.json   Manifest: format, ledger id, time, files
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
package backup

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"path"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/ledger"
)

const (
	// Format is the version of the archive layout: 2 added the journal's
	// directory (ledger/journal/). Read takes format 1 archives too.
	Format = 2
	// ManifestName is the archive's first entry.
	ManifestName = "quotaledger-backup.json"
	// LedgerDir is the directory of the checkpoint's files in the archive,
	// and of the ledger in a data directory.
	LedgerDir = "ledger"
	// JournalDir is the directory of the journal's files in LedgerDir.
	JournalDir = "journal"
)

// Manifest is the first entry of an archive.
type Manifest struct {
	Format   int       `json:"format"`
	LedgerID string    `json:"ledger_id"`
	Time     time.Time `json:"time"`
	// Files are the names of the checkpoint's files, as found under
	// ledger/ in the archive, with their sizes.
	Files map[string]int64 `json:"files"`
}

// Write takes a checkpoint of l, without stopping its writes, and writes
// it to w as an archive. begin, if not nil, is called with the manifest
// once the checkpoint is taken and before anything is written: an error
// before begin left w untouched; one after it (begin's own included) left
// a partial archive in w, which Read refuses (gzip and tar both tell).
func Write(w io.Writer, l *ledger.Ledger, begin func(Manifest) error) error {
	return l.WithCheckpoint(func(fs vfs.FS, dir string) error {
		names, dirs, err := checkpointFiles(fs, dir)
		if err != nil {
			return err
		}
		m := Manifest{Format: Format, LedgerID: l.ID(), Time: time.Now().UTC(), Files: make(map[string]int64, len(names))}
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
		if begin != nil {
			if err := begin(m); err != nil {
				return err
			}
		}
		gz := gzip.NewWriter(w)
		tw := tar.NewWriter(gz)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestName,
			Size: int64(len(manifest)), Mode: 0o600, ModTime: m.Time}); err != nil {
			return err
		}
		if _, err := tw.Write(manifest); err != nil {
			return err
		}
		for _, d := range append([]string{""}, dirs...) {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path.Join(LedgerDir, d) + "/",
				Mode: 0o700, ModTime: m.Time}); err != nil {
				return err
			}
		}
		for _, name := range names {
			if err := tarFile(tw, fs, path.Join(dir, name), LedgerDir+"/"+name, m.Files[name], m.Time); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return gz.Close()
	})
}

// checkpointFiles lists the files of a checkpoint, sorted, by their paths
// under dir: its own and those of its subdirectories (the journal's), one
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
		case fi.IsDir() && name == JournalDir:
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
