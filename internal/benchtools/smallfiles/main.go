// Command smallfiles is scripts/bench.sh's small-file workload: it creates or deletes N
// files in a tree under DIR from one thread, the way tar -x or rm -r would, and prints the
// rate as one JSON line. One process doing N syscalls is what the benchmark wants to time;
// a shell loop forking dd or rm per file would mostly time fork and exec.
//
// Usage:
//
//	smallfiles create DIR N SIZE PERDIR   mkdir DIR/dNNNN as needed, then for each file
//	                                      open(O_CREAT|O_EXCL|O_WRONLY), one write of SIZE
//	                                      bytes, close (no fsync, as cp and tar do)
//	smallfiles delete DIR N PERDIR        unlink every file, then rmdir each DIR/dNNNN
//
// Files are DIR/d%04d/f%06d, PERDIR files to a directory. Output:
//
//	{"op":"create","files":5000,"secs":2.61,"files_per_sec":1915.7}
package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: smallfiles create DIR N SIZE PERDIR | smallfiles delete DIR N PERDIR")
	os.Exit(2)
}

func num(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "smallfiles: %q is not a positive number\n", s)
		os.Exit(2)
	}
	return n
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "smallfiles: %v\n", err)
	os.Exit(1)
}

func dirOf(root string, i, perDir int) string {
	return filepath.Join(root, fmt.Sprintf("d%04d", i/perDir))
}

func fileOf(root string, i, perDir int) string {
	return filepath.Join(dirOf(root, i, perDir), fmt.Sprintf("f%06d", i))
}

func create(root string, n, size, perDir int) {
	buf := make([]byte, size)
	if _, err := rand.Read(buf); err != nil {
		fail(err)
	}
	for i := 0; i < n; i++ {
		if i%perDir == 0 {
			if err := os.Mkdir(dirOf(root, i, perDir), 0o755); err != nil {
				fail(err)
			}
		}
		f, err := os.OpenFile(fileOf(root, i, perDir), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			fail(err)
		}
		buf[0], buf[1] = byte(i), byte(i>>8) // no two files alike
		if _, err := f.Write(buf); err != nil {
			fail(err)
		}
		if err := f.Close(); err != nil {
			fail(err)
		}
	}
}

func remove(root string, n, perDir int) {
	for i := 0; i < n; i++ {
		if err := os.Remove(fileOf(root, i, perDir)); err != nil {
			fail(err)
		}
		if i%perDir == perDir-1 || i == n-1 {
			if err := os.Remove(dirOf(root, i, perDir)); err != nil {
				fail(err)
			}
		}
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	op := os.Args[1]
	var n int
	start := time.Now()
	switch {
	case op == "create" && len(os.Args) == 6:
		n = num(os.Args[3])
		create(os.Args[2], n, num(os.Args[4]), num(os.Args[5]))
	case op == "delete" && len(os.Args) == 5:
		n = num(os.Args[3])
		remove(os.Args[2], n, num(os.Args[4]))
	default:
		usage()
	}
	secs := time.Since(start).Seconds()
	out, _ := json.Marshal(map[string]any{"op": op, "files": n, "secs": secs, "files_per_sec": float64(n) / secs})
	fmt.Println(string(out))
}
