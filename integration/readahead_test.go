package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountReadAheadKB returns the kernel readahead of the mount at dir.
func mountReadAheadKB(t *testing.T, dir string) string {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(dir, &st), "stat "+dir)
	b, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)))
	must(t, err, "read_ahead_kb")
	return strings.TrimSpace(string(b))
}

// TestReadAhead: a mount by root gets 1 MiB of kernel readahead (one chunk) instead of
// the 128 KiB the kernel gives every FUSE mount, and --read-ahead-kb sets it or, at 0,
// leaves the kernel's.
func TestReadAhead(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "1024"},
		{[]string{"--read-ahead-kb", "4096"}, "4096"},
		{[]string{"--read-ahead-kb", "0"}, "128"},
	} {
		cfg := newConfig(t)
		cfg.Args = c.args
		m := StartMount(t, cfg)
		if got := mountReadAheadKB(t, cfg.Mountpoint); got != c.want {
			t.Errorf("%v: readahead %s KiB, want %s", c.args, got, c.want)
		}
		m.Stop(t)
	}
}
