package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestIsMountHelper(t *testing.T) {
	for argv0, want := range map[string]bool{
		"/sbin/mount.fuse.ssefs":     true,
		"mount.fuse.ssefs":           true,
		"/usr/sbin/mount.ssefs":      true,
		"/usr/local/bin/ssefs":       false,
		"/sbin/mount.fuse":           false,
		"/tmp/mount.fuse.ssefs.test": false,
	} {
		if got := isMountHelper(argv0); got != want {
			t.Errorf("isMountHelper(%q) = %v, want %v", argv0, got, want)
		}
	}
}

func TestMountHelperTranslatesOptionsToFlags(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		// What mount(8) of util-linux 2.38 passes for the example and an fstab
		// line with _netdev,nofail,x-systemd.automount (it drops the x-systemd ones).
		{
			[]string{"/srv/data", "/mnt/x", "-o", "rw,key_file=/etc/ssefs/master.key,s3_address=127.0.0.1:9000,allow_other"},
			[]string{"--daemon", "--data-dir=/srv/data", "--master-key-file=/etc/ssefs/master.key", "--s3-address=127.0.0.1:9000", "--allow-other", "--", "/mnt/x"},
		},
		{
			[]string{"/srv/data", "/mnt/x", "-o", "rw,_netdev,nofail,user,x-systemd.automount,X-mount.mkdir,comment=x,nosuid,nodev,exec,noatime,bucket=photos"},
			[]string{"--daemon", "--data-dir=/srv/data", "--bucket=photos", "--", "/mnt/x"},
		},
		// -s -n -v and -t in any order; dashes work as well as underscores; a quoted
		// value keeps its comma.
		{
			[]string{"-s", "/srv/data", "-n", "/mnt/x", "-v", "-o", `key-cache-ttl=1m,root_password_file="/etc/a,b"`, "-t", "fuse.ssefs"},
			[]string{"--daemon", "--data-dir=/srv/data", "--key-cache-ttl=1m", "--root-password-file=/etc/a,b", "--", "/mnt/x"},
		},
		// No options at all, and a mountpoint that looks like a flag.
		{
			[]string{"/srv/data", "-weird"},
			nil,
		},
		{
			[]string{"/srv/data", "/mnt/-x"},
			[]string{"--daemon", "--data-dir=/srv/data", "--", "/mnt/-x"},
		},
	}
	for _, c := range cases {
		h, err := parseMountHelperArgs(c.args)
		if c.want == nil {
			if err == nil {
				t.Errorf("%q: want an error, got %q", c.args, h.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if !slices.Equal(h.args, c.want) {
			t.Errorf("%q:\n got %q\nwant %q", c.args, h.args, c.want)
		}
	}
}

func TestMountHelperRefusesClearly(t *testing.T) {
	cases := []struct {
		args []string
		want string // the error names this
	}{
		{[]string{"/d", "/m", "-o", "no_such_option=1"}, "-o no_such_option: unknown option"},
		{[]string{"/d", "/m", "-o", "ro"}, "-o ro: ssefs has no read-only mode"},
		{[]string{"/d", "/m", "-o", "noexec"}, "-o noexec"},
		{[]string{"/d", "/m", "-o", "sync"}, "-o sync"},
		{[]string{"/d", "/m", "-o", "bucket"}, "-o bucket needs a value"},
		{[]string{"/d", "/m", "-o", "data_dir=/x"}, "-o data_dir: the data directory is the mount's source"},
		{[]string{"/d", "/m", "-o", `bucket="photos`}, "not closed"},
		{[]string{"/d", "/m", "-t", "ext4"}, "-t ext4"},
		{[]string{"/d", "/m", "-N", "/proc/1/ns/mnt"}, "-N"},
		{[]string{"/d", "/m", "-x"}, "unknown argument -x"},
		{[]string{"/d"}, "want DATA_DIR and MOUNTPOINT, got 1"},
		{[]string{"/d", "/m", "-o"}, "-o needs a value"},
	}
	for _, c := range cases {
		_, err := parseMountHelperArgs(c.args)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", c.args, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q does not say %q", c.args, err, c.want)
		}
	}
}

func TestMountHelperSloppySkipsUnknownOptions(t *testing.T) {
	h, err := parseMountHelperArgs([]string{"-s", "/d", "/m", "-o", "frobnicate=3,bucket=b,other"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"--daemon", "--data-dir=/d", "--bucket=b", "--", "/m"}; !slices.Equal(h.args, want) {
		t.Errorf("args %q, want %q", h.args, want)
	}
	if !slices.Equal(h.skipped, []string{"frobnicate", "other"}) {
		t.Errorf("skipped %q", h.skipped)
	}
}

// A bad value is reported under the option's name as the user wrote it, not the flag's.
func TestMountHelperValueErrorsNameTheOption(t *testing.T) {
	for _, c := range []struct{ opt, want string }{
		{"attr_timeout=soon", `"-o attr_timeout"`},
		{"key_cache_ttl=-1s", "-o key_cache_ttl must not be negative"},
		{"allow_other=maybe", `"-o allow_other"`},
	} {
		// -f: mount(8)'s fake mode checks everything and mounts nothing.
		err := runMountHelper([]string{"-f", t.TempDir(), t.TempDir(), "-o", c.opt}, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("-o %s: want a usage error, got %v", c.opt, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "--") {
			t.Errorf("-o %s: error %q, want it to say %s and name no --flag", c.opt, err, c.want)
		}
	}
	if err := runMountHelper([]string{"-f", t.TempDir(), t.TempDir(), "-o", "attr_timeout=2s,bucket=ok-bucket"}, io.Discard, io.Discard); err != nil {
		t.Errorf("valid options in fake mode: %v", err)
	}
}

func TestReplaceFlagWholeWordsOnly(t *testing.T) {
	got := replaceFlag(`--kms-kes-key-file and --kms-kes-key, --kms-kes-key`, "--kms-kes-key", "-o key")
	if want := `--kms-kes-key-file and -o key, -o key`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
