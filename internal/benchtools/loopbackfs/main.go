// Command loopbackfs mounts a plain go-fuse v2 loopback file system: every FUSE request
// is passed to the same call on ORIGINAL, with no encryption and no caching of its own.
// scripts/bench.sh uses it as the "plain FUSE, no crypto" baseline, so that ssefs' figures
// can be read against what FUSE itself costs on this kernel with the same go-fuse version
// and the same kernel-facing mount options as ssefs (benchmount.Options).
//
// Usage: loopbackfs [-debug] ORIGINAL MOUNTPOINT
//
// It prints "loopbackfs: mounted MOUNTPOINT" on stderr once the kernel has the mount, serves
// in the foreground, and unmounts and exits 0 on SIGINT or SIGTERM (or after umount).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/ssefs/ssefs/internal/benchtools/benchmount"
)

func main() {
	debug := flag.Bool("debug", false, "log every FUSE request")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: loopbackfs [-debug] ORIGINAL MOUNTPOINT\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	orig, mnt := flag.Arg(0), flag.Arg(1)
	root, err := fs.NewLoopbackRoot(orig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loopbackfs: %v\n", err)
		os.Exit(1)
	}
	opts := benchmount.Options("loopbackfs", orig, *debug)
	opts.NullPermissions = true // mode 000 is a real mode here, as on the original
	server, err := fs.Mount(mnt, root, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loopbackfs: mounting %s at %s: %v\n", orig, mnt, err)
		os.Exit(1)
	}
	benchmount.Serve(server, "loopbackfs", mnt)
}
