package fs

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
)

func uploadPart(t *testing.T, e *Engine, id string, n int, data []byte, opt PartOptions) string {
	t.Helper()
	etag, err := e.UploadPart(context.Background(), id, n, bytes.NewReader(data), opt)
	if err != nil {
		t.Fatalf("part %d: %v", n, err)
	}
	if etag != md5hex(data) {
		t.Fatalf("part %d: ETag %q, want %q", n, etag, md5hex(data))
	}
	return etag
}

func multipartETag(parts ...[]byte) string {
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + string(rune('0'+len(parts)))
}

func TestMultipartComplete(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	e, ctx := env.e, context.Background()
	p1, p2, p3 := randBytes(MinPartSize), randBytes(MinPartSize), randBytes(1)
	before := countObjects(t, env)
	id, err := e.CreateUpload(ctx, "bucket", "big/object", PutOptions{
		UserMeta: map[string]string{"k": "v"}, System: SystemMeta{ContentType: "video/x"}, Owner: Owner{Mode: 0o640, Uid: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Out of order, and part 2 uploaded twice (the second replaces the first).
	e3 := uploadPart(t, e, id, 3, p3, PartOptions{})
	uploadPart(t, e, id, 2, randBytes(MinPartSize+5), PartOptions{})
	e1 := uploadPart(t, e, id, 1, p1, PartOptions{})
	e2 := uploadPart(t, e, id, 2, p2, PartOptions{})

	// Invisible until complete; listed as an upload with its parts.
	if _, err := e.StatObject(ctx, "bucket", "big/object", GetOptions{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("stat before complete: %v", err)
	}
	if res, _ := e.ListObjects(ctx, "bucket", ListOptions{}); len(res.Objects) != 0 {
		t.Fatalf("listed before complete: %+v", res.Objects)
	}
	ups, err := e.ListUploads(ctx, "bucket", ListUploadsOptions{})
	if err != nil || len(ups.Uploads) != 1 || ups.Uploads[0].UploadID != id || ups.Uploads[0].Key != "big/object" || ups.Uploads[0].Initiated.IsZero() {
		t.Fatalf("uploads %+v, %v", ups, err)
	}
	lp, err := e.ListParts(ctx, id, 0, 2)
	if err != nil || len(lp.Parts) != 2 || !lp.Truncated || lp.Next != 2 || lp.Parts[0].ETag != e1 || lp.Parts[1].Size != MinPartSize {
		t.Fatalf("parts %+v, %v", lp, err)
	}
	lp, err = e.ListParts(ctx, id, lp.Next, 2)
	if err != nil || len(lp.Parts) != 1 || lp.Truncated || lp.Parts[0].Number != 3 || lp.Parts[0].ETag != e3 {
		t.Fatalf("parts page 2 %+v, %v", lp, err)
	}

	// Refusals leave the upload as it was.
	for _, c := range []struct {
		parts []CompletedPart
		want  error
	}{
		{nil, ErrInvalid},
		{[]CompletedPart{{2, e2}, {1, e1}, {3, e3}}, ErrInvalidPartOrder},
		{[]CompletedPart{{1, e1}, {1, e1}}, ErrInvalidPartOrder},
		{[]CompletedPart{{1, e1}, {2, e1}, {3, e3}}, ErrInvalidPart},
		{[]CompletedPart{{1, e1}, {2, e2}, {4, e3}}, ErrInvalidPart},
		{[]CompletedPart{{1, e1}, {3, e3}, {4, e3}}, ErrInvalidPart},
		{[]CompletedPart{{3, e3}, {4, e3}}, ErrInvalidPart},
	} {
		if _, err := e.CompleteUpload(ctx, id, c.parts, PartOptions{}); !errors.Is(err, c.want) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("complete %v: %v, want %v", c.parts, err, c.want)
		}
	}
	info, err := e.CompleteUpload(ctx, id, []CompletedPart{{1, `"` + e1 + `"`}, {2, e2}, {3, strings.ToUpper(e3)}}, PartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := multipartETag(p1, p2, p3)
	if info.ETag != want || info.ETagIsMD5 || info.Size != int64(2*MinPartSize+1) {
		t.Fatalf("complete info %+v, want ETag %s", info, want)
	}
	r, st, err := e.OpenObject(ctx, "bucket", "big/object", GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	r.Close()
	all := md5.Sum(slices.Concat(p1, p2, p3))
	if !bytes.Equal(h.Sum(nil), all[:]) {
		t.Fatal("assembled content differs")
	}
	if st.ETag != want || st.UserMeta["k"] != "v" || st.System.ContentType != "video/x" || st.Uid != 5 || st.Mode&0o777 != 0o640 {
		t.Fatalf("stat %+v", st)
	}
	// The upload and all its parts are gone: only the object's 11 chunks are stored.
	if _, err := e.ListParts(ctx, id, 0, 0); !errors.Is(err, ErrNoSuchUpload) || !errors.Is(err, ErrNotExist) {
		t.Fatalf("parts after complete: %v", err)
	}
	if _, err := e.CompleteUpload(ctx, id, []CompletedPart{{1, e1}}, PartOptions{}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("complete again: %v", err)
	}
	if n := countObjects(t, env) - before; n != 11 {
		t.Fatalf("%d objects stored, want 11", n)
	}
	if n := countOrphans(t, env); n != 0 {
		t.Fatalf("%d orphans", n)
	}
}

func TestMultipartAbortReclaimsAndSurvivesRestart(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	before := countObjects(t, env)
	id, err := e.CreateUpload(ctx, "bucket", "k", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uploadPart(t, e, id, 1, randBytes(3*testChunk), PartOptions{})
	uploadPart(t, e, id, 7, randBytes(10), PartOptions{})
	// A part whose body fails stores nothing.
	boom := errors.New("boom")
	if _, err := e.UploadPart(ctx, id, 2, &failingReader{data: randBytes(2 * testChunk), err: boom}, PartOptions{}); !errors.Is(err, boom) {
		t.Fatalf("failing part: %v", err)
	}
	if _, err := e.UploadPart(ctx, id, 0, strings.NewReader("x"), PartOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("part 0: %v", err)
	}
	if _, err := e.UploadPart(ctx, id, MaxPartNumber+1, strings.NewReader("x"), PartOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("part 10001: %v", err)
	}
	// Part 1's three chunks; part 7, 10 bytes, is a tiny file kept inline.
	if n := countObjects(t, env) - before; n != 3 {
		t.Fatalf("%d objects for the parts, want 3", n)
	}
	// Parts survive a restart.
	env.reopen()
	e = env.e
	lp, err := e.ListParts(ctx, id, 0, 0)
	if err != nil || len(lp.Parts) != 2 || lp.Parts[1].Number != 7 {
		t.Fatalf("parts after restart: %+v, %v", lp, err)
	}
	if err := e.AbortUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.AbortUpload(ctx, id); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("abort again: %v", err)
	}
	if _, err := e.UploadPart(ctx, id, 1, strings.NewReader("x"), PartOptions{}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("part after abort: %v", err)
	}
	if _, err := e.UploadPart(ctx, "not-an-id", 1, strings.NewReader("x"), PartOptions{}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("bad id: %v", err)
	}
	if n := countObjects(t, env); n != before {
		t.Fatalf("%d objects after abort, %d before", n, before)
	}
	if n := countOrphans(t, env); n != 0 {
		t.Fatalf("%d orphans", n)
	}
	if ups, _ := e.ListUploads(ctx, "bucket", ListUploadsOptions{}); len(ups.Uploads) != 0 {
		t.Fatalf("uploads left: %+v", ups)
	}
}

func TestMultipartSmallPartsCopyAndSSEC(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	// Too small a part that is not the last.
	id, err := e.CreateUpload(ctx, "bucket", "small", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := uploadPart(t, e, id, 1, []byte("a"), PartOptions{})
	b := uploadPart(t, e, id, 2, []byte("b"), PartOptions{})
	if _, err := e.CompleteUpload(ctx, id, []CompletedPart{{1, a}, {2, b}}, PartOptions{}); !errors.Is(err, ErrEntityTooSmall) {
		t.Fatalf("small part: %v", err)
	}
	// A single small part is fine.
	info, err := e.CompleteUpload(ctx, id, []CompletedPart{{2, b}}, PartOptions{})
	if err != nil || info.ETag != multipartETag([]byte("b")) {
		t.Fatalf("single part: %+v, %v", info, err)
	}
	if got, _ := get(t, e, "bucket", "small", GetOptions{}); string(got) != "b" {
		t.Fatalf("content %q", got)
	}

	// SSE-C: every part and the completion need the key; the part is copied from a range.
	var ck, wrong [32]byte
	rand.Read(ck[:])
	rand.Read(wrong[:])
	src := randBytes(3*testChunk + 11)
	put(t, e, "bucket", "src", src, PutOptions{})
	id, err = e.CreateUpload(ctx, "bucket", "dir/enc", PutOptions{SSE: SSE{Type: keys.SSEC, ClientKey: &ck}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.UploadPart(ctx, id, 1, strings.NewReader("x"), PartOptions{}); !errors.Is(err, keys.ErrClientKeyRequired) {
		t.Fatalf("part without key: %v", err)
	}
	if _, err := e.UploadPart(ctx, id, 1, strings.NewReader("x"), PartOptions{ClientKey: &wrong}); !errors.Is(err, keys.ErrClientKeyMismatch) {
		t.Fatalf("part with wrong key: %v", err)
	}
	etag, err := e.UploadPartCopy(ctx, id, 1, "bucket", "src", 5, 2*testChunk, GetOptions{}, PartOptions{ClientKey: &ck})
	if err != nil || etag != md5hex(src[5:5+2*testChunk]) {
		t.Fatalf("part copy: %q, %v", etag, err)
	}
	if _, err := e.UploadPartCopy(ctx, id, 2, "bucket", "src", 5, int64(len(src)), GetOptions{}, PartOptions{ClientKey: &ck}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("part copy out of range: %v", err)
	}
	if _, err := e.CompleteUpload(ctx, id, []CompletedPart{{1, etag}}, PartOptions{}); !errors.Is(err, ErrAccess) {
		t.Fatalf("complete without key: %v", err)
	}
	if _, err := e.CompleteUpload(ctx, id, []CompletedPart{{1, etag}}, PartOptions{ClientKey: &ck}); err != nil {
		t.Fatal(err)
	}
	got, st := get(t, e, "bucket", "dir/enc", GetOptions{ClientKey: &ck})
	if !bytes.Equal(got, src[5:5+2*testChunk]) || st.SSEType != keys.SSEC {
		t.Fatalf("SSE-C multipart: %+v", st)
	}
	if _, _, err := e.OpenObject(ctx, "bucket", "dir/enc", GetOptions{}); !errors.Is(err, ErrAccess) {
		t.Fatalf("get without key: %v", err)
	}
	// A key that became a file meanwhile: complete fails, the upload stays.
	id, err = e.CreateUpload(ctx, "bucket", "f/g", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := uploadPart(t, e, id, 1, []byte("x"), PartOptions{})
	put(t, e, "bucket", "f", []byte("file"), PutOptions{})
	if _, err := e.CompleteUpload(ctx, id, []CompletedPart{{1, x}}, PartOptions{}); !errors.Is(err, ErrNotDir) {
		t.Fatalf("complete onto a file parent: %v", err)
	}
	if lp, err := e.ListParts(ctx, id, 0, 0); err != nil || len(lp.Parts) != 1 {
		t.Fatalf("upload after a failed complete: %+v, %v", lp, err)
	}
	if err := e.AbortUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestListUploadsMarkers(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	type up struct{ key, id string }
	var all []up
	for _, k := range []string{"b", "a/x", "a-c", "a", "a"} {
		id, err := e.CreateUpload(ctx, "bucket", k, PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, up{k, id})
	}
	slices.SortFunc(all, func(x, y up) int {
		if c := strings.Compare(x.key, y.key); c != 0 {
			return c
		}
		return strings.Compare(x.id, y.id)
	})
	var got []up
	opt := ListUploadsOptions{MaxUploads: 2}
	for {
		res, err := e.ListUploads(ctx, "bucket", opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range res.Uploads {
			got = append(got, up{u.Key, u.UploadID})
		}
		if !res.Truncated {
			break
		}
		opt.KeyMarker, opt.UploadIDMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	if !slices.Equal(got, all) {
		t.Fatalf("uploads %v, want %v", got, all)
	}
	res, err := e.ListUploads(ctx, "bucket", ListUploadsOptions{Prefix: "a"})
	if err != nil || len(res.Uploads) != 4 {
		t.Fatalf("prefix a: %+v, %v", res, err)
	}
	res, err = e.ListUploads(ctx, "bucket", ListUploadsOptions{KeyMarker: "a"})
	if err != nil || len(res.Uploads) != 3 || res.Uploads[0].Key != "a-c" {
		t.Fatalf("after key a: %+v, %v", res, err)
	}
}

// An upload that is never completed nor aborted is reclaimed once it is older than the
// expiry; younger ones are kept.
func TestExpireUploads(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	before := countObjects(t, env)
	old, err := e.CreateUpload(ctx, "bucket", "old", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uploadPart(t, e, old, 1, randBytes(2*testChunk), PartOptions{})
	cutoff := time.Now()
	for time.Now().UnixNano() == cutoff.UnixNano() { // initiated strictly after the cutoff
	}
	young, err := e.CreateUpload(ctx, "bucket", "young", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	youngPart := randBytes(10)
	uploadPart(t, e, young, 1, youngPart, PartOptions{})
	if n, err := e.ExpireUploads(ctx, cutoff); err != nil || n != 1 {
		t.Fatalf("ExpireUploads: %d, %v; want 1 expired", n, err)
	}
	if _, err := e.ListParts(ctx, old, 0, 0); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("expired upload still listed: %v", err)
	}
	// The young upload's part (10 bytes) is inline: no object; the old one's are gone.
	if n := countObjects(t, env) - before; n != 0 {
		t.Fatalf("%d chunk objects left, want 0", n)
	}
	if _, err := e.CompleteUpload(ctx, young, []CompletedPart{{Number: 1, ETag: md5hex(youngPart)}}, PartOptions{}); err != nil {
		t.Fatalf("completing the young upload: %v", err)
	}
	if n, err := e.ExpireUploads(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("ExpireUploads with nothing pending: %d, %v", n, err)
	}
}

// An upload's context is stored with it (across a restart), seals every part and the
// final object, and is shown by ListParts, ListUploads and the completed object.
func TestMultipartKMSContext(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	ctx := context.Background()
	want := map[string]string{"purpose": "backup", "host": "db1"}
	id, err := env.e.CreateUpload(ctx, "bucket", "mp", PutOptions{SSE: SSE{Type: keys.SSEKMS, Context: maps.Clone(want)}})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := randBytes(MinPartSize), randBytes(1234)
	e1 := uploadPart(t, env.e, id, 1, p1, PartOptions{})
	env.reopen()
	e2 := uploadPart(t, env.e, id, 2, p2, PartOptions{})
	lp, err := env.e.ListParts(ctx, id, 0, 0)
	if err != nil || !maps.Equal(lp.Upload.KMSContext, want) || lp.Upload.SSEType != keys.SSEKMS {
		t.Fatalf("ListParts upload: %+v, %v", lp.Upload, err)
	}
	lu, err := env.e.ListUploads(ctx, "bucket", ListUploadsOptions{})
	if err != nil || len(lu.Uploads) != 1 || !maps.Equal(lu.Uploads[0].KMSContext, want) {
		t.Fatalf("ListUploads: %+v, %v", lu, err)
	}
	// The parts are sealed with the context.
	var partInos []meta.Ino
	err = env.db.View(func(tx *meta.Tx) error {
		uid, err := parseUploadID(id)
		if err != nil {
			return err
		}
		return tx.Parts(uid, 0, func(p meta.Part) bool { partInos = append(partInos, p.Ino); return true })
	})
	if err != nil || len(partInos) != 2 {
		t.Fatalf("parts %v, %v", partInos, err)
	}
	for _, ino := range partInos {
		if sk := sealedKeyOf(t, env, Ino(ino)); !maps.Equal(sk.Context, want) {
			t.Fatalf("part inode %d sealed with context %v", ino, sk.Context)
		}
	}
	info, err := env.e.CompleteUpload(ctx, id, []CompletedPart{{1, e1}, {2, e2}}, PartOptions{})
	if err != nil || !maps.Equal(info.KMSContext, want) {
		t.Fatalf("complete: %v, %v", info.KMSContext, err)
	}
	if sk := sealedKeyOf(t, env, info.Ino); !maps.Equal(sk.Context, want) || sk.SSEType != keys.SSEKMS {
		t.Fatalf("object sealed with %s context %v", sk.SSEType, sk.Context)
	}
	env.reopen()
	got, st := get(t, env.e, "bucket", "mp", GetOptions{})
	if !bytes.Equal(got, append(p1, p2...)) || !maps.Equal(st.KMSContext, want) {
		t.Fatalf("completed object: context %v, content equal %v", st.KMSContext, bytes.Equal(got, append(p1, p2...)))
	}
	// An upload without a context has none.
	id, err = env.e.CreateUpload(ctx, "bucket", "plain", PutOptions{SSE: SSE{Type: keys.SSEKMS}})
	if err != nil {
		t.Fatal(err)
	}
	if lp, err := env.e.ListParts(ctx, id, 0, 0); err != nil || lp.Upload.KMSContext != nil {
		t.Fatalf("plain upload: %v, %v", lp.Upload.KMSContext, err)
	}
}
