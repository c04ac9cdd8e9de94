package smallfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestVolume: writes and preallocations count in 4 KiB blocks, a write
// past the size is ENOSPC (which Pebble's vfs.IsNoSpaceError knows), a
// removed or renamed-over file gives its space back, a reused file keeps
// its own, and a volume opened again counts what is already there.
func TestVolume(t *testing.T) {
	root := t.TempDir()
	fs, err := New(vfs.Default, root, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fs.Create(filepath.Join(root, "a"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := fs.Used(); got != 4096 {
		t.Fatalf("one byte written: %d used, want one block", got)
	}
	if err := f.Preallocate(0, 40<<10); err != nil {
		t.Fatal(err)
	}
	if got := fs.Used(); got != 40<<10 {
		t.Fatalf("40 KiB preallocated: %d used", got)
	}
	if u, err := fs.GetDiskUsage(root); err != nil || u.AvailBytes != 24<<10 || u.TotalBytes != 64<<10 {
		t.Fatalf("GetDiskUsage: %+v %v", u, err)
	}
	if err := fs.Fill(filepath.Join(root, "b"), 32<<10); !vfs.IsNoSpaceError(err) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("32 KiB more on 24 KiB free: %v, want ENOSPC", err)
	}
	if _, err := os.Stat(filepath.Join(root, "b")); !os.IsNotExist(err) {
		t.Fatalf("the file that did not fit is left: %v", err)
	}
	if _, err := f.Write(make([]byte, 64<<10)); !vfs.IsNoSpaceError(err) {
		t.Fatalf("a write past the volume: %v, want ENOSPC", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Fill(filepath.Join(root, "c"), 8<<10); err != nil {
		t.Fatal(err)
	}
	if got := fs.UsedUnder(root, "c"); got != 8<<10 {
		t.Fatalf("UsedUnder c: %d", got)
	}
	// Renamed over: a's space is given back, c's moves to a.
	if err := fs.Rename(filepath.Join(root, "c"), filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	if got := fs.Used(); got != 8<<10 {
		t.Fatalf("after c renamed over a: %d used, want 8 KiB", got)
	}
	// Reused: keeps its space.
	g, err := fs.ReuseForWrite(filepath.Join(root, "a"), filepath.Join(root, "d"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fs.UsedUnder(root, "d"); got != 8<<10 {
		t.Fatalf("a reused as d: d takes %d, want 8 KiB", got)
	}
	if err := fs.Remove(filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	if got := fs.Used(); got != 0 {
		t.Fatalf("all removed: %d used", got)
	}

	// Opened again over files already there.
	if err := os.WriteFile(filepath.Join(root, "e"), make([]byte, 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := New(vfs.Default, root, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Used(); got != 8<<10 {
		t.Fatalf("a volume opened over a file of 5000 bytes: %d used, want two blocks", got)
	}
}
