package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseEncryptionXattr(t *testing.T) {
	v := "type=SSE-S3 key=my-key algorithm=DAREv2-HMAC-SHA256 cipher=AES-256-GCM bucket=photos chunk-size=1048576 sealed-at=2026-11-25T22:00:00Z chunks=3 stored-bytes=3001472"
	info, err := parseEncryptionXattr(v)
	if err != nil {
		t.Fatal(err)
	}
	want := encryptionInfo{Type: "SSE-S3", Key: "my-key", Algorithm: "DAREv2-HMAC-SHA256", Cipher: "AES-256-GCM", Bucket: "photos",
		ChunkSize: 1 << 20, SealedAt: time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC), Chunks: 3, StoredBytes: 3001472}
	if !reflect.DeepEqual(info, want) {
		t.Fatalf("got  %+v\nwant %+v", info, want)
	}
	// An SSE-KMS context: base64url of its JSON, since values may hold spaces and '='.
	ctxJSON := base64.RawURLEncoding.EncodeToString([]byte(`{"dept":"r&d","note":"a b=c"}`))
	info, err = parseEncryptionXattr("type=SSE-KMS key=k bucket=b context=" + ctxJSON)
	if err != nil || !reflect.DeepEqual(info.Context, map[string]string{"dept": "r&d", "note": "a b=c"}) {
		t.Errorf("context: %+v, %v", info.Context, err)
	}

	// An older mount: no sealed-at, chunks or stored-bytes; a newer one: unknown fields.
	info, err = parseEncryptionXattr("type=SSE-KMS key=k algorithm=A cipher=C bucket=b chunk-size=1048576 future=thing")
	if err != nil || info.Chunks != -1 || info.StoredBytes != -1 || !info.SealedAt.IsZero() || info.Type != "SSE-KMS" {
		t.Errorf("older attribute: %+v, %v", info, err)
	}
	if info, err = parseEncryptionXattr("type=SSE-C key= sealed-at=unknown"); err != nil || !info.SealedAt.IsZero() || info.Key != "" {
		t.Errorf("SSE-C with unknown time: %+v, %v", info, err)
	}
	for _, bad := range []string{"", "key=k", "type=SSE-S3 chunks=many", "type=SSE-S3 sealed-at=yesterday", "type=SSE-S3 garbage",
		"type=SSE-KMS context=!!", "type=SSE-KMS context=" + base64.RawURLEncoding.EncodeToString([]byte("[1]"))} {
		if _, err := parseEncryptionXattr(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestPrintStat(t *testing.T) {
	now := time.Date(2026, 11, 26, 1, 30, 0, 0, time.UTC)
	var buf bytes.Buffer
	printStat(&buf, fileStat{Name: "photos/beach.jpg", Size: 3000000, Enc: encryptionInfo{
		Type: "SSE-KMS", Key: "photo-key", Algorithm: "DAREv2-HMAC-SHA256", Cipher: "AES-256-GCM", Bucket: "photos",
		ChunkSize: 1 << 20, SealedAt: time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC), Chunks: 3, StoredBytes: 3001472,
		Context: map[string]string{"project": "x", "dept": "r&d"},
	}}, now)
	want := `Name        : photos/beach.jpg
Size        : 2.9 MiB (3000000 bytes)
Bucket      : photos
Encrypted   : SSE-KMS
Key         : photo-key
Context     : {"dept":"r&d","project":"x"}
Algorithm   : DAREv2-HMAC-SHA256
Cipher      : AES-256-GCM
Key sealed  : 2026-11-25 22:00:00 UTC (3 hours ago)
Chunks      : 3 (chunk size 1.0 MiB)
Stored size : 2.9 MiB (3001472 bytes)
`
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	printStat(&buf, fileStat{Name: "c", Size: 5, Enc: encryptionInfo{Type: "SSE-C", Chunks: -1, StoredBytes: -1, ChunkSize: -1}}, now)
	for _, w := range []string{"Encrypted   : SSE-C\n", "Key         : (the client's own key: not stored)\n", "Key sealed  : unknown\n", "Size        : 5 bytes\n"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("SSE-C output lacks %q:\n%s", w, buf.String())
		}
	}
	if strings.Contains(buf.String(), "Chunks") || strings.Contains(buf.String(), "Stored") {
		t.Errorf("unknown counts are shown:\n%s", buf.String())
	}
}

func TestAgoAndHumanBytes(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Minute: "in the future: check the clocks", 10 * time.Second: "just now", time.Minute: "1 minute ago",
		59 * time.Minute: "59 minutes ago", 3 * time.Hour: "3 hours ago", 47 * time.Hour: "47 hours ago",
		3 * 24 * time.Hour: "3 days ago", 90 * 24 * time.Hour: "3 months ago", 3 * 365 * 24 * time.Hour: "3 years ago",
	} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 1 << 20: "1.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestStatOutsideAMount: a file elsewhere has no ssefs.encryption attribute; a directory
// and a missing file are refused by name; each failure is its own line, exit code 1.
func TestStatOutsideAMount(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd("stat", file, dir, filepath.Join(dir, "missing"))
	if r.code != 1 || r.stdout != "" {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
	want := []string{
		"ssefs: " + file + ": not a file on an ssefs mount",
		"ssefs: " + dir + ": is a directory",
		"ssefs: " + filepath.Join(dir, "missing") + ": no such file or directory",
	}
	if got := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, strings.Join(want, "\n"))
	}
	runCmd("stat").wantRefusal(t, 2, "FILE")
}
