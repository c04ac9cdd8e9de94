// Package smallfs is a small volume for the tests of a full disk: a Pebble
// filesystem of a fixed size over another one (vfs.Default on a test's
// temporary directory), which counts the space of every file made through
// it as a real filesystem counts blocks, answers GetDiskUsage with its size
// and what is left, and refuses a write that does not fit with ENOSPC.
//
// A file takes the larger of what was written to it and what was
// preallocated for it (Pebble preallocates its WAL files: fallocate's
// blocks count on a real volume though the file's size does not show
// them), rounded up to 4 KiB blocks. The preallocation is only counted:
// the space is not taken from the disk under it, so a test can play a
// volume of gigabytes on a small disk, and Fill makes a file that fills
// the volume without writing it (an operator's `fallocate -l 300M filler`).
//
// Why not a tmpfs or a loop device: mounting one needs root and a kernel
// that lets the test's container mount, which CI machines often do not;
// this needs neither and behaves the same on every machine.
package smallfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// blockSize is the unit a file's space is counted in.
const blockSize = 4096

// FS is a volume of a fixed size. Its methods are safe for concurrent use.
type FS struct {
	vfs.FS
	size int64

	mu    sync.Mutex
	used  int64
	files map[string]*node // by cleaned path
}

// node is one file's space: a file renamed while open keeps its node.
type node struct {
	alloc int64 // bytes counted, a multiple of blockSize
}

// New returns a volume of size bytes over fs, counting the files already
// under root (a volume reopened by a restarted server).
func New(fs vfs.FS, root string, size int64) (*FS, error) {
	f := &FS{FS: fs, size: size, files: make(map[string]*node)}
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == root {
				return filepath.SkipDir
			}
			return err
		}
		if info.Mode().IsRegular() {
			n := &node{alloc: roundUp(info.Size())}
			f.files[filepath.Clean(path)] = n
			f.used += n.alloc
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

func roundUp(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }

// Size is the volume's size.
func (f *FS) Size() int64 { return f.size }

// Used is the space its files take.
func (f *FS) Used() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used
}

// UsedUnder is the space the files under dir take, and whose name ends
// with suffix ("" for all), e.g. a Pebble database's WAL files (".log").
func (f *FS) UsedUnder(dir, suffix string) int64 {
	dir = filepath.Clean(dir) + string(filepath.Separator)
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for path, nd := range f.files {
		if strings.HasPrefix(path, dir) && strings.HasSuffix(path, suffix) {
			n += nd.alloc
		}
	}
	return n
}

// Fill makes the file name take n bytes of the volume, written with
// nothing (preallocated): ENOSPC if they do not fit.
func (f *FS) Fill(name string, n int64) error {
	file, err := f.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if err := file.Preallocate(0, n); err != nil {
		_ = file.Close()
		_ = f.Remove(name)
		return err
	}
	return file.Close()
}

// errNoSpace is a write past the volume's size; vfs.IsNoSpaceError knows it.
func errNoSpace(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: syscall.ENOSPC}
}

// grow counts n's allocation up to end, or refuses it with ENOSPC.
func (f *FS) grow(nd *node, end int64, op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	need := roundUp(end) - nd.alloc
	if need <= 0 {
		return nil
	}
	if f.used+need > f.size {
		return errNoSpace(op, name)
	}
	nd.alloc += need
	f.used += need
	return nil
}

// drop forgets path's file (removed, or replaced), returning its space.
func (f *FS) dropLocked(path string) {
	if nd, ok := f.files[path]; ok {
		f.used -= nd.alloc
		delete(f.files, path)
	}
}

// nodeOf is path's node, made (empty) if the file is new to the volume.
func (f *FS) nodeOf(path string, fresh bool) *node {
	path = filepath.Clean(path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if fresh {
		f.dropLocked(path)
	}
	nd, ok := f.files[path]
	if !ok {
		nd = &node{}
		f.files[path] = nd
	}
	return nd
}

// Create implements vfs.FS.
func (f *FS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	return &sizedFile{File: file, fs: f, nd: f.nodeOf(name, true), name: name}, nil
}

// OpenReadWrite implements vfs.FS.
func (f *FS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.OpenReadWrite(name, category, opts...)
	if err != nil {
		return nil, err
	}
	return &sizedFile{File: file, fs: f, nd: f.nodeOf(name, false), name: name}, nil
}

// ReuseForWrite implements vfs.FS: the reused file keeps its space.
func (f *FS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	f.move(oldname, newname)
	return &sizedFile{File: file, fs: f, nd: f.nodeOf(newname, false), name: newname}, nil
}

// Rename implements vfs.FS.
func (f *FS) Rename(oldname, newname string) error {
	if err := f.FS.Rename(oldname, newname); err != nil {
		return err
	}
	f.move(oldname, newname)
	return nil
}

func (f *FS) move(oldname, newname string) {
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	f.mu.Lock()
	defer f.mu.Unlock()
	nd, ok := f.files[oldname]
	if !ok || oldname == newname {
		return
	}
	f.dropLocked(newname)
	delete(f.files, oldname)
	f.files[newname] = nd
}

// Remove implements vfs.FS.
func (f *FS) Remove(name string) error {
	if err := f.FS.Remove(name); err != nil {
		return err
	}
	f.mu.Lock()
	f.dropLocked(filepath.Clean(name))
	f.mu.Unlock()
	return nil
}

// RemoveAll implements vfs.FS.
func (f *FS) RemoveAll(name string) error {
	err := f.FS.RemoveAll(name)
	dir := filepath.Clean(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	for path := range f.files {
		if path == dir || strings.HasPrefix(path, dir+string(filepath.Separator)) {
			if _, serr := f.FS.Stat(path); serr != nil {
				f.dropLocked(path)
			}
		}
	}
	return err
}

// Link implements vfs.FS: the link shares the file's space (counted once,
// under the first name; removing that name frees it, which a real
// filesystem would not do while the link lives: the tests of a full disk
// make no links).
func (f *FS) Link(oldname, newname string) error { return f.FS.Link(oldname, newname) }

// GetDiskUsage implements vfs.FS: the volume's size and what is left.
func (f *FS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return vfs.DiskUsage{TotalBytes: uint64(f.size), UsedBytes: uint64(f.used), AvailBytes: uint64(f.size - f.used)}, nil
}

// Unwrap implements vfs.FS.
func (f *FS) Unwrap() vfs.FS { return f.FS }

// String names the volume, for test messages.
func (f *FS) String() string {
	return fmt.Sprintf("smallfs: %d of %d bytes used", f.Used(), f.size)
}

// sizedFile is a file of the volume: its writes and preallocations are
// counted, and refused past the volume's size.
type sizedFile struct {
	vfs.File
	fs   *FS
	nd   *node
	name string
	mu   sync.Mutex
	off  int64 // where Write writes
}

func (s *sizedFile) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fs.grow(s.nd, s.off+int64(len(p)), "write", s.name); err != nil {
		return 0, err
	}
	n, err := s.File.Write(p)
	s.off += int64(n)
	return n, err
}

func (s *sizedFile) WriteAt(p []byte, off int64) (int, error) {
	if err := s.fs.grow(s.nd, off+int64(len(p)), "write", s.name); err != nil {
		return 0, err
	}
	return s.File.WriteAt(p, off)
}

// Preallocate counts the space and takes none from the disk under the
// volume.
func (s *sizedFile) Preallocate(offset, length int64) error {
	return s.fs.grow(s.nd, offset+length, "fallocate", s.name)
}

// Read keeps Write's offset where a read left it (an os.File shares one).
func (s *sizedFile) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.File.Read(p)
	s.off += int64(n)
	return n, err
}
