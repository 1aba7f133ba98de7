// Command loopbackfs mounts a plain go-fuse v2 loopback file system: every FUSE request
// is passed to the same call on ORIGINAL, with no encryption and no caching of its own.
// scripts/bench.sh uses it as the "plain FUSE, no crypto" baseline, so that ssefs' figures
// can be read against what FUSE itself costs on this kernel with the same go-fuse version
// and the same kernel-facing mount options as ssefs (direct mount(2), 1 MiB max write and
// readahead, 1 s entry and attribute timeouts, and default_permissions only when not
// mounted by root: as for ssefs and gocryptfs, it would cost a GETATTR of the directory
// after every create and unlink in it, one more round trip per file than the peers).
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
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
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
	timeout := time.Second
	server, err := fs.Mount(mnt, root, &fs.Options{
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
		// Mode 000 is a real mode here, as on the original.
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			FsName:            orig,
			Name:              "loopbackfs",
			Debug:             *debug,
			DirectMount:       true,
			DirectMountStrict: os.Geteuid() == 0,
			MaxWrite:          1 << 20,
			MaxReadAhead:      1 << 20,
			Options:           mountFlags(),
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "loopbackfs: mounting %s at %s: %v\n", orig, mnt, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "loopbackfs: mounted %s\n", mnt)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		// Unmount fails with EBUSY while a file is open on the mount; retry for a while,
		// then give up and let the kernel detach it lazily when the process exits.
		for i := 0; i < 50; i++ {
			if err := server.Unmount(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Fprintf(os.Stderr, "loopbackfs: %v: could not unmount %s, exiting anyway\n", s, mnt)
		os.Exit(1)
	}()
	server.Wait()
}

// mountFlags are the mount's kernel options: default_permissions, as ssefs sets it, only
// for a mount by another user than root. Without it only the mounting user (root) gets in
// at all (there is no allow_other), and root passes the kernel's permission checks anyway.
func mountFlags() []string {
	if os.Geteuid() == 0 {
		return nil
	}
	return []string{"default_permissions"}
}
