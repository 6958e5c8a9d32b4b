package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// faultDiskSize is the fault vmd's disk: a tmpfs this small fills with one
// write loop, as the brief of issue 5 suggests (mount -t tmpfs -o size=64k).
const faultDiskSize = "64k"

// faultDisk is where the fault vmd keeps its images and its per-command
// temp dirs: one small tmpfs holding both, as vmd's defaults put both in
// /tmp (IMAGES_DIR=/tmp/images, TMPDIR=/tmp). The images directory is a
// directory on it, not its mount point, so that it can be deleted.
type faultDisk struct {
	root   string
	images string
	tmp    string
	tmpfs  bool
	// mountErr says why root is a plain directory: the runner may not
	// mount (not root, or no CAP_SYS_ADMIN in a container).
	mountErr error
}

func newFaultDisk(root string) (*faultDisk, error) {
	d := &faultDisk{root: root, images: filepath.Join(root, "images"), tmp: filepath.Join(root, "tmp")}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount("vmdload", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+faultDiskSize+",mode=0755"); err != nil {
		d.mountErr = fmt.Errorf("mount -t tmpfs -o size=%s: %w", faultDiskSize, err)
	} else {
		d.tmpfs = true
	}
	for _, dir := range []string{d.images, d.tmp} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			d.release(nil)
			return nil, err
		}
	}
	return d, nil
}

// release unmounts the tmpfs. The fault vmd has exited (or been killed) by
// then; a lazy unmount covers a process still holding it.
func (d *faultDisk) release(rep *Report) {
	if !d.tmpfs {
		return
	}
	if err := unix.Unmount(d.root, 0); err != nil {
		if err := unix.Unmount(d.root, unix.MNT_DETACH); err != nil && rep != nil {
			rep.fail("unmounting the fault disk %s: %v", d.root, err)
		}
	}
	d.tmpfs = false
}

// fill writes a file on the fault disk until it is full.
func (d *faultDisk) fill() (int64, error) {
	f, err := os.Create(filepath.Join(d.root, "filler"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, unix.ENOSPC) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if n > 64<<20 {
			return n, errors.New("wrote 64 MiB and the disk is not full")
		}
	}
}

func (d *faultDisk) unfill() error { return os.Remove(filepath.Join(d.root, "filler")) }

// readOnly makes dir read-only for real, and returns how to undo it: as
// root, a read-only bind mount of dir onto itself (permissions do not stop
// root); otherwise, mode 0555. It fails when neither can work: root
// without the right to mount.
func readOnly(dir string) (how string, undo func() error, err error) {
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			return "", nil, err
		}
		return "chmod 0555 (not root)", func() error { return os.Chmod(dir, 0o755) }, nil
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return "", nil, fmt.Errorf("bind mount: %w", err)
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		unix.Unmount(dir, 0)
		return "", nil, fmt.Errorf("read-only remount: %w", err)
	}
	return "read-only bind mount", func() error { return unix.Unmount(dir, 0) }, nil
}
