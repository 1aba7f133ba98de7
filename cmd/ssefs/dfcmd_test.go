package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/sio"

	ssefs "github.com/ssefs/ssefs/fs"
)

// objectBytes sums the chunk objects in a local data directory: what df's stored bytes
// must come to, found without the metadata.
func objectBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var n uint64
	err := filepath.WalkDir(filepath.Join(dir, objectsDir), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		n += uint64(info.Size())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// df on the data directory of newStaticDataDir (photos: 5 files of 0..400 bytes, docs: 3
// of 0..200, all kept inline) with a file of 10000 bytes added to photos (an object),
// offline and through the admin socket of a serving process: the same numbers, JSON and
// table alike.
func TestDfCommand(t *testing.T) {
	dir := newStaticDataDir(t)
	d := mustOpenStore(t, dir, false)
	if _, err := d.engine.PutObject(context.Background(), "photos", "big", strings.NewReader(strings.Repeat("y", 10000)), ssefs.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	stored := objectBytes(t, dir)
	// What DARE makes of the tiny files, independently of the metadata.
	inline := func(sizes ...uint64) (n uint64) {
		for _, s := range sizes {
			if s > 0 {
				es, err := sio.EncryptedSize(s)
				if err != nil {
					t.Fatal(err)
				}
				n += es
			}
		}
		return n
	}
	photosInline, docsInline := inline(100, 200, 300, 400), inline(100, 200)
	keyName := strings.SplitN(testMasterKey, ":", 2)[0]

	check := func(t *testing.T, live bool, docsKey string) {
		r := runCmd("df", "--data-dir", dir, "--json")
		r.wantOK(t)
		var got usageJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("df --json: %v\n%s", err, r.stdout)
		}
		if got.DataDir != dir || (got.ServedByPID == os.Getpid()) != live || got.MetadataBytes == 0 || got.Store == nil {
			t.Errorf("data dir %q, served by %d (live %v), metadata %d bytes, store %+v", got.DataDir, got.ServedByPID, live, got.MetadataBytes, got.Store)
		}
		if len(got.Buckets) != 2 {
			t.Fatalf("buckets: %+v", got.Buckets)
		}
		docs, photos := got.Buckets[0], got.Buckets[1]
		if docs.Name != "docs" || docs.Files != 3 || docs.LogicalBytes != 300 || photos.Name != "photos" || photos.Files != 6 || photos.LogicalBytes != 11000 {
			t.Errorf("buckets: %+v", got.Buckets)
		}
		// Every file, the empty ones too, is sealed; only those with content have chunks.
		if !reflect.DeepEqual(photos.Keys, []keyUsageJSON{{keyName, 6}}) || photos.Chunks != 5 || docs.Chunks != 2 {
			t.Errorf("photos keys %+v, chunks %d / %d", photos.Keys, photos.Chunks, docs.Chunks)
		}
		if stored == 0 || got.Total.StoredBytes != stored || photos.StoredBytes != stored || docs.StoredBytes != 0 ||
			photos.InlineBytes != photosInline || docs.InlineBytes != docsInline || got.Total.InlineBytes != photosInline+docsInline ||
			got.Total.Files != 9 || got.Total.LogicalBytes != 11300 {
			t.Errorf("total %+v, photos %+v, docs %+v; the objects hold %d bytes, inline %d and %d", got.Total, photos, docs, stored, photosInline, docsInline)
		}
		if docs.DefaultKey != docsKey || photos.DefaultKey != "" || got.Total.Name != "" {
			t.Errorf("empty fields: %+v", got)
		}

		r = runCmd("df", "--data-dir", dir, "--bytes")
		r.wantOK(t)
		want := []*regexp.Regexp{
			regexp.MustCompile(`(?m)^BUCKET +FILES +DIRS +SIZE +STORED +DEFAULT KEY +KEYS$`),
			regexp.MustCompile(`(?m)^docs +3 +0 +300 +0 +` + regexp.QuoteMeta(cmp.Or(docsKey, "-")) + ` +` + keyName + ` \(3\)$`),
			regexp.MustCompile(`(?m)^photos +6 +0 +11000 +` + itoa(stored) + ` +- +` + keyName + ` \(6\)$`),
			regexp.MustCompile(`(?m)^total +9 +0 +11300 +` + itoa(stored) + ` +- +` + keyName + ` \(9\)$`),
			regexp.MustCompile(`(?m)^Inline: ` + itoa(photosInline+docsInline) + ` of tiny files' ciphertext, kept in the metadata$`),
			regexp.MustCompile(`(?m)^Metadata: \d+ on disk$`),
			regexp.MustCompile(`(?m)^Object store: \d+ available of \d+$`),
		}
		for _, re := range want {
			if !re.MatchString(r.stdout) {
				t.Errorf("df --bytes lacks %s:\n%s", re, r.stdout)
			}
		}
		if live != strings.Contains(r.stdout, "(answered by ssefs pid ") {
			t.Errorf("live %v:\n%s", live, r.stdout)
		}

		r = runCmd("df", "--data-dir", dir, "--bucket", "docs")
		r.wantOK(t)
		if !regexp.MustCompile(`(?m)^docs +3 +0 +300 B `).MatchString(r.stdout) || strings.Contains(r.stdout, "photos") || strings.Contains(r.stdout, "total") {
			t.Errorf("df --bucket docs:\n%s", r.stdout)
		}
		runCmd("df", "--data-dir", dir, "--bucket", "nope").wantRefusal(t, 1, "bucket nope does not exist", dir)
	}
	t.Run("offline", func(t *testing.T) { check(t, false, "") })
	t.Run("live", func(t *testing.T) {
		d := serveDataDir(t, dir)
		// A default key shows; what the serving engine has flushed counts.
		if err := d.engine.SetBucketEncryption(context.Background(), "docs", keyName); err != nil {
			t.Fatal(err)
		}
		check(t, true, keyName)
	})

	runCmd("df", "--data-dir", dir, "extra").wantRefusal(t, 2, "extra")
	runCmd("df", "--data-dir", dir, "--bucket", "Bad_Name").wantRefusal(t, 2, "--bucket")
	empty := t.TempDir()
	runCmd("df", "--data-dir", empty).wantRefusal(t, 1, "holds no ssefs store")
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// The admin socket answers usage for a backend that has it, and says "not supported"
// (as an error kind the client can test) for one that has not.
func TestAdminSocketUsage(t *testing.T) {
	_, c := serveFake(t, t.TempDir(), newFakeBackend())
	_, err := c.Usage(context.Background(), "")
	if !errors.Is(err, ssefs.ErrNotSupported) {
		t.Fatalf("usage of a backend without it: %v", err)
	}
}
