package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func token() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// TestNoPlaintextOnDisk: content, file and directory names, a bucket name, a symlink target,
// an xattr name and an xattr value, all carrying random tokens, must not appear in any byte of
// any file under the data dir (Badger, objects, keys, everything), neither while mounted
// after a sync nor after the unmount. Nor may they appear in the data dir's own file names.
func TestNoPlaintextOnDisk(t *testing.T) {
	requireLocalStore(t)
	cfg := newConfig(t)
	cfg.Bucket = "" // the root lists buckets, so a bucket name is stored too
	m := StartMount(t, cfg)

	tokContent, tokDir, tokFile, tokBucket, tokLink, tokXName, tokXVal := token(), token(), token(), token(), token(), token(), token()
	marker := "SSEFS-PLAINTEXT-MARKER-" + tokContent
	bucket := "leakbkt-" + tokBucket
	dirName := "leakdir-" + tokDir
	fileName := "leakfile-" + tokFile + ".txt"
	linkTarget := "leaktarget-" + tokLink + "/" + marker
	xName := "user.leak-" + tokXName
	xValue := "leakvalue-" + tokXVal + "-" + marker
	needles := map[string]string{
		"content marker": marker, "content token": tokContent, "directory name": tokDir,
		"file name": tokFile, "bucket name": tokBucket, "symlink target": tokLink,
		"xattr name": tokXName, "xattr value": tokXVal,
	}

	must(t, os.Mkdir(m.P(bucket), 0o755), "mkdir bucket")
	must(t, os.MkdirAll(m.P(bucket, dirName), 0o755), "mkdir")
	repeated := bytes.Repeat([]byte(marker), (64<<10)/len(marker)+1)[:64<<10]
	files := map[string][]byte{
		filepath.Join(dirName, fileName):        repeated,                                              // 64 KiB of the marker
		filepath.Join(dirName, "tiny-"+tokFile): []byte(marker),                                        // small enough to be inlined
		"big-" + tokFile:                        bytes.Repeat([]byte(marker), 3*ChunkSize/len(marker)), // several chunks
	}
	for name, data := range files {
		writeFile(t, m.P(bucket, name), data, 0o644)
	}
	// The marker after a hole, and a marker written into an existing chunk in place.
	f, err := os.Create(m.P(bucket, "sparse-"+tokFile))
	must(t, err, "create")
	_, err = f.WriteAt([]byte(marker), 2*ChunkSize+100)
	must(t, err, "pwrite")
	must(t, f.Close(), "close")
	f, err = os.OpenFile(m.P(bucket, "big-"+tokFile), os.O_WRONLY, 0)
	must(t, err, "open")
	_, err = f.WriteAt([]byte("REWRITE-"+marker), ChunkSize-5)
	must(t, err, "pwrite")
	must(t, f.Close(), "close")
	must(t, os.Symlink(linkTarget, m.P(bucket, dirName, "link-"+tokFile)), "symlink")
	must(t, unix.Setxattr(m.P(bucket, dirName, fileName), xName, []byte(xValue), 0), "setxattr")
	// A renamed file and a deleted one leave no trace of their names either.
	writeFile(t, m.P(bucket, "renamed-"+tokFile), []byte(marker), 0o644)
	must(t, os.Rename(m.P(bucket, "renamed-"+tokFile), m.P(bucket, dirName, "renamed2-"+tokFile)), "rename")
	writeFile(t, m.P(bucket, "deleted-"+tokFile), repeated, 0o644)
	must(t, os.Remove(m.P(bucket, "deleted-"+tokFile)), "remove")

	// Sanity: the mount does show all of it (the test is worthless if nothing was stored).
	assertContent(t, m.P(bucket, dirName, fileName), repeated)
	if got, err := os.Readlink(m.P(bucket, dirName, "link-"+tokFile)); err != nil || got != linkTarget {
		t.Fatalf("readlink: %q %v", got, err)
	}
	d, err := os.Open(m.P(bucket))
	must(t, err, "open bucket")
	must(t, unix.Syncfs(int(d.Fd())), "syncfs")
	d.Close()

	// Control: the same scan over the plaintext view must find every needle that is in a
	// file's content or path there, or the scan proves nothing.
	seen, _ := findNeedles(t, m.Dir, needles, "control scan of the mount itself")
	for what := range needles {
		if what == "symlink target" || strings.HasPrefix(what, "xattr") {
			continue // not in a content or a path of the plaintext view
		}
		hit := false
		for _, f := range seen {
			if strings.Contains(f, " "+what+" ") {
				hit = true
			}
		}
		if !hit {
			t.Errorf("control: scanning the mounted plaintext view did not find the %s: the scanner is broken", what)
		}
	}

	scanForNeedles(t, cfg.DataDir, needles, "while mounted, after syncfs")
	m.Stop(t)
	total := scanForNeedles(t, cfg.DataDir, needles, "after unmount")
	if total < int64(len(repeated)+3*ChunkSize) {
		t.Errorf("the data dir holds only %d bytes, less than the content written: where did it go?", total)
	}

	// And it all reads back.
	m = StartMount(t, cfg)
	assertContent(t, m.P(bucket, dirName, fileName), repeated)
	v := make([]byte, 256)
	n, err := unix.Getxattr(m.P(bucket, dirName, fileName), xName, v)
	if err != nil || string(v[:n]) != xValue {
		t.Errorf("xattr after remount: %q %v", v[:n], err)
	}
}

// scanForNeedles reads every byte of every file below dir and reports each needle found in a
// file's content or in a path as a test error. It returns the number of bytes scanned.
func scanForNeedles(t *testing.T, dir string, needles map[string]string, when string) int64 {
	t.Helper()
	found, total := findNeedles(t, dir, needles, when)
	for _, f := range found {
		t.Error(f)
	}
	return total
}

// findNeedles does the scanning for scanForNeedles and returns what it found.
func findNeedles(t *testing.T, dir string, needles map[string]string, when string) (found []string, total int64) {
	t.Helper()
	maxLen := 0
	for _, n := range needles {
		maxLen = max(maxLen, len(n))
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // a file Badger removed while we walk (mounted scan)
				return nil
			}
			return err
		}
		for what, n := range needles {
			if strings.Contains(path, n) {
				found = append(found, fmt.Sprintf("%s: the %s appears in the path %s", when, what, path))
			}
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		defer f.Close()
		files++
		buf := make([]byte, 4<<20)
		carry := 0
		var off int64
		for {
			n, err := f.Read(buf[carry:])
			if n > 0 {
				win := buf[:carry+n]
				for what, needle := range needles {
					if i := bytes.Index(win, []byte(needle)); i >= 0 {
						found = append(found, fmt.Sprintf("%s: the %s (%q) appears in %s at offset %d", when, what, needle, path, off-int64(carry)+int64(i)))
					}
				}
				total += int64(n)
				off += int64(n)
				keep := min(len(win), maxLen-1)
				copy(buf, win[len(win)-keep:])
				carry = keep
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	t.Logf("%s: scanned %d files, %d bytes under %s", when, files, total, dir)
	if files == 0 {
		t.Errorf("%s: %s holds no files at all", when, dir)
	}
	return found, total
}
