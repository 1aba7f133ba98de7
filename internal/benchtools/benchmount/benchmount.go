// Package benchmount is what scripts/bench.sh's reference file systems (loopbackfs, memfs)
// share: the kernel-facing mount options ssefs uses, so that they differ from ssefs only in
// what their handlers do, and serving until a signal.
package benchmount

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options are ssefs' mount options as far as the kernel sees them: direct mount(2), 1 MiB
// max write and readahead, 1 s entry and attribute timeouts, and default_permissions only
// when not mounted by root (as for ssefs and gocryptfs: it would cost a GETATTR of the
// directory after every create and unlink in it, one more round trip per file than the
// peers; without it only the mounting user gets in at all, as there is no allow_other).
func Options(name, fsName string, debug bool) *fs.Options {
	timeout := time.Second
	opts := &fs.Options{
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
		MountOptions: fuse.MountOptions{
			FsName:            fsName,
			Name:              name,
			Debug:             debug,
			DirectMount:       true,
			DirectMountStrict: os.Geteuid() == 0,
			MaxWrite:          1 << 20,
			MaxReadAhead:      1 << 20,
		},
	}
	if os.Geteuid() != 0 {
		opts.MountOptions.Options = []string{"default_permissions"}
	}
	return opts
}

// Serve says on stderr that the mount is up, serves until it is unmounted, and unmounts
// it on SIGINT or SIGTERM. Unmount fails with EBUSY while a file is open on the mount; it
// retries for a while, then gives up and exits, for the kernel to detach the mount lazily.
func Serve(server *fuse.Server, name, mnt string) {
	fmt.Fprintf(os.Stderr, "%s: mounted %s\n", name, mnt)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		for range 50 {
			if err := server.Unmount(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Fprintf(os.Stderr, "%s: %v: could not unmount %s, exiting anyway\n", name, s, mnt)
		os.Exit(1)
	}()
	server.Wait()
}
