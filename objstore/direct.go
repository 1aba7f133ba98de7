package objstore

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WriteDirect makes Put write whole chunks around the page cache (O_DIRECT) where the
// filesystem allows (--store-direct-io). On this VM, copying into the page cache is at
// times most of the CPU of a streaming write: dd of 1 GiB takes 0.28 s or 3.1 s of
// system time buffered (the slow case being fresh page-cache memory the host must back
// first) against 0.13-0.17 s direct, and perf once showed the kernel's
// copy_folio_from_iter_atomic at 58% of the mount's samples. fio's 1 GiB sequential
// write went from 464-636 to 788-1,070 MB/s in such runs, and gained nothing (936-1,046
// against 973-1,011 MB/s, ssefs CPU 1.2-1.4 s both) when buffered writes were fast. The
// price is that nothing written stays cached: S3 GETs of objects just PUT went from
// 1,500-2,000 to 520-880 MB/s with 8 clients, below MinIO, since they now come from the
// disk. So it is off by default, for stores that mostly take writes (backups, ingest).
// Durability does not change: an object's size and blocks are metadata that only Sync
// makes durable.
func (l *Local) WriteDirect(on bool) { l.direct.Store(on) }

// directWrites counts the objects written directly, so tests can tell the paths apart.
var directWrites atomic.Int64

// writeDirect writes data to the new, empty file fd with O_DIRECT, as far as the
// filesystem's alignment allows, and the unaligned tail through the page cache. It
// reports false, having written nothing, where direct I/O does not apply: a filesystem
// without it, or a buffer its memory alignment does not fit.
func writeDirect(fd int, data []byte) (bool, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err != nil {
		return false, nil
	}
	memAlign, offAlign := uintptr(stx.Dio_mem_align), int(stx.Dio_offset_align)
	if stx.Mask&unix.STATX_DIOALIGN == 0 || memAlign == 0 || offAlign == 0 {
		return false, nil
	}
	direct := len(data) / offAlign * offAlign
	if direct == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(data)))%memAlign != 0 {
		return false, nil
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return false, nil
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_DIRECT); err != nil {
		return false, nil
	}
	n, err := pwriteAll(fd, data[:direct], 0)
	if _, ferr := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags); ferr != nil && err == nil {
		err = fmt.Errorf("clearing O_DIRECT: %w", ferr)
	}
	if n == 0 && errors.Is(err, unix.EINVAL) {
		return false, nil // alignment rules statx did not tell: write it the usual way
	}
	if err != nil {
		return true, err
	}
	if _, err := pwriteAll(fd, data[direct:], int64(direct)); err != nil {
		return true, err
	}
	directWrites.Add(1)
	return true, nil
}

// pwriteAll writes all of p at off, resuming short writes.
func pwriteAll(fd int, p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pwrite(fd, p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, fmt.Errorf("pwrite wrote nothing: %w", unix.EIO)
		}
		done += n
	}
	return done, nil
}
