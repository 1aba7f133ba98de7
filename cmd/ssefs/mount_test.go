package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestMountFlagsFromEnvironment(t *testing.T) {
	t.Setenv("SSEFS_DATA_DIR", "/from/env")
	t.Setenv("SSEFS_KEY_CACHE_TTL", "90s")
	cfg, mp, err := parseMountFlags([]string{"--key-cache-ttl", "2m", "/mnt/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.dataDir != "/from/env" || mp != "/mnt/x" {
		t.Fatalf("data dir %q, mountpoint %q", cfg.dataDir, mp)
	}
	if cfg.keyCacheTTL != 2*time.Minute {
		t.Fatalf("a flag must win over the environment: ttl %v", cfg.keyCacheTTL)
	}
}

func TestMountFlagErrorsAreUsageErrorsNamingTheCulprit(t *testing.T) {
	cases := []struct {
		env, val string
		args     []string
		want     string
	}{
		{"SSEFS_KEY_CACHE_TTL", "soon", []string{"/mnt"}, "SSEFS_KEY_CACHE_TTL"},
		{"", "", []string{"--no-such-flag", "/mnt"}, "no-such-flag"},
		{"", "", []string{}, "MOUNTPOINT"},
		{"", "", []string{"/a", "/b"}, "MOUNTPOINT"},
		{"", "", []string{"--bucket", "Bad_Bucket", "/mnt"}, "--bucket"},
		{"", "", []string{"--key-cache-ttl", "-1s", "/mnt"}, "--key-cache-ttl"},
	}
	for _, c := range cases {
		if c.env != "" {
			t.Setenv(c.env, c.val)
		}
		_, _, err := parseMountFlags(c.args, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: want a usage error, got %v", c.args, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %q does not name %q", c.args, err, c.want)
		}
		if c.env != "" {
			t.Setenv(c.env, "")
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/plain`:         "/mnt/plain",
		`/mnt/with\040space`: "/mnt/with space",
		`/mnt/tab\011x`:      "/mnt/tab\tx",
		`/mnt/back\134slash`: `/mnt/back\slash`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
