package integration

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadRacingTruncateRewrite (issue #6): processes rewrite one file in place through
// the mount (open with O_TRUNC, write, close) while others read it whole through the
// mount. A read racing a truncate may see the content before or after it, or a prefix,
// but never zeros that no writer wrote. The kernel sizes its reads by the size it last
// heard of and hears of a truncate only in the reply to it; a read it sent meanwhile that
// ssefs answered short was zero-filled and shown at the old size. Before ssefs answered
// such reads from the content before the truncate (fs.Handle.ReadAtKernel), every run
// saw that, several times in its 240 rewrites.
func TestReadRacingTruncateRewrite(t *testing.T) {
	requireMount(t)
	m := StartMount(t, newConfig(t))
	seed := rng(t).Uint64()
	const (
		writers    = 2
		rewrites   = 120 // each
		readers    = 3
		minReads   = 20 // each, at least
		maxSize    = 3 * ChunkSize / 2
		firstBytes = 5000
	)
	path := m.P("f")
	reg := &xvRegistry{seed: seed, by: map[string]map[uint64]xvContent{}}
	writeFile(t, path, reg.add("f", 1, firstBytes), 0o644)

	fl := &failures{t: t}
	var writersLeft atomic.Int32
	writersLeft.Store(writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			defer writersLeft.Add(-1)
			r := mrand.New(mrand.NewPCG(seed, uint64(w)))
			for i := 0; i < rewrites && !fl.stop(); i++ {
				data := reg.add("f", uint64(w+1)<<32|uint64(i+1), 64+r.IntN(maxSize))
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
				if err == nil {
					_, err = f.Write(data)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					fl.errorf("writer %d: rewrite %d of %d bytes: %v", w, i, len(data), err)
				}
			}
		}(w)
	}
	var reads atomic.Int64
	for rd := 0; rd < readers; rd++ {
		wg.Add(1)
		go func(rd int) {
			defer wg.Done()
			for i := 0; (i < minReads || writersLeft.Load() > 0) && !fl.stop(); i++ {
				got, err := os.ReadFile(path)
				if err != nil {
					fl.errorf("reader %d: %v", rd, err)
					continue
				}
				// Not checkPieces: regenerating hundreds of candidates per read would slow
				// the readers down too much to race. With random contents, a run of zeros
				// is what a zero-filled page looks like.
				if note := zeroRunNote(got); note != "" {
					fl.errorf("reader %d: read %d bytes%s, which no writer wrote", rd, len(got), note)
				}
				reads.Add(1)
			}
		}(rd)
	}
	wg.Wait()
	t.Logf("%d rewrites, %d reads", writers*rewrites, reads.Load())
	got := readFile(t, path)
	if why := reg.checkComplete("f", got); why != "" {
		t.Errorf("final read: %s", why)
	}
	m.Stop(t)
}

// zeroRunNote describes the first run of zero bytes (of at least 64) in b, or is "".
func zeroRunNote(b []byte) string {
	const minRun = 64
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		j := i
		for j < len(b) && b[j] == 0 {
			j++
		}
		if j-i >= minRun {
			return fmt.Sprintf(" (bytes [%d,%d) are zeros)", i, j)
		}
		i = j
	}
	return ""
}

// TestDirectReadAfterTruncate: an O_DIRECT read bypasses the page cache, so its length is
// the caller's, not one the kernel sized by the file's size: right after a truncate it
// must end at the new size, although ssefs still keeps the content cut off for reads the
// page cache sized before the truncate (see TestReadRacingTruncateRewrite).
func TestDirectReadAfterTruncate(t *testing.T) {
	requireMount(t)
	m := StartMount(t, newConfig(t))
	r := rng(t)
	data := randBytes(r, 2*ChunkSize+4321)
	path := m.P("f")
	writeFile(t, path, data, 0o644)
	// The file stays open from the truncate to the reads: ssefs keeps what a truncate cut
	// off until the open file's content next changes or its last close.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err, "open")
	const size = ChunkSize/2 + 100
	must(t, f.Truncate(size), "ftruncate")
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		f.Close()
		t.Skip("this kernel refuses O_DIRECT on FUSE files")
	}
	must(t, err, "open with O_DIRECT")
	buf := make([]byte, len(data)+ChunkSize)
	n, err := unix.Pread(fd, buf, 0)
	unix.Close(fd)
	must(t, err, "pread with O_DIRECT")
	got, rerr := os.ReadFile(path)
	must(t, f.Close(), "close")
	assertBytes(t, "O_DIRECT read after the truncate", buf[:n], data[:size])
	must(t, rerr, "read after the truncate")
	assertBytes(t, "read after the truncate", got, data[:size])
	m.Stop(t)
}
