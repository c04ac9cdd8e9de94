package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
)

// removeLeftovers removes from the data directory dir what an operation
// cut short by a crash left there: a checkpoint's folder (.checkpoint-*,
// ledger.WithCheckpoint's, made for a backup or for a cluster's checkpoint)
// or a restore's (.restore-*, backup.Restore's), each a copy of the ledger
// that nothing else removes. It runs once the ledger is open (its lock says
// no other server uses dir) and before anything could make one (issue 17).
func removeLeftovers(dir string, log zerolog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn().Err(err).Str("dir", dir).Msg("looking for the folders a crash left")
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, ".checkpoint-") && !strings.HasPrefix(name, ".restore-") {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.RemoveAll(path); err != nil {
			log.Warn().Err(err).Str("dir", path).Msg("removing a folder a crash left")
			continue
		}
		log.Info().Str("dir", path).Msg("removed a checkpoint or restore folder a crash left")
	}
}
