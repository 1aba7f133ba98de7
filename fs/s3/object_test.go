package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestPutGetHeadRangeConditional(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "tls"}[tlsOn], func(t *testing.T) {
			en := newEnv(t, tlsOn)
			ctx := context.Background()
			en.mkBucket(t, "bkt")
			data := randData(3*testChunk + 777)

			// minio-go: streaming signed chunks over http, unsigned trailer over TLS.
			up := en.put(t, "bkt", "dir/obj.bin", data, minio.PutObjectOptions{})
			if up.ETag != md5hex(data) {
				t.Fatalf("etag %s, want %s", up.ETag, md5hex(data))
			}
			if got := en.get(t, "bkt", "dir/obj.bin", minio.GetObjectOptions{}); !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, differ", len(got))
			}
			// aws-sdk-go-v2: hex SHA-256 over http, STREAMING-UNSIGNED-PAYLOAD-TRAILER over TLS.
			if _, err := en.aws.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("aws.bin"), Body: bytes.NewReader(data)}); err != nil {
				t.Fatal(err)
			}
			out, err := en.aws.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("aws.bin")})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if !bytes.Equal(got, data) || aws.ToString(out.ETag) != `"`+md5hex(data)+`"` {
				t.Fatalf("aws get: %d bytes, etag %s, type %s", len(got), aws.ToString(out.ETag), aws.ToString(out.ContentType))
			}

			// Ranges.
			for _, rc := range []struct {
				hdr        string
				start, end int // inclusive
			}{
				{"bytes=0-0", 0, 0},
				{"bytes=10-99", 10, 99},
				{"bytes=100000-", 100000, len(data) - 1},
				{"bytes=-500", len(data) - 500, len(data) - 1},
				{"bytes=5-999999999", 5, len(data) - 1},
			} {
				out, err := en.aws.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("aws.bin"), Range: aws.String(rc.hdr)})
				if err != nil {
					t.Fatalf("%s: %v", rc.hdr, err)
				}
				got, _ := io.ReadAll(out.Body)
				out.Body.Close()
				want := data[rc.start : rc.end+1]
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: %d bytes, want %d", rc.hdr, len(got), len(want))
				}
				if cr := aws.ToString(out.ContentRange); cr != "bytes "+itoa(rc.start)+"-"+itoa(rc.end)+"/"+itoa(len(data)) {
					t.Fatalf("%s: Content-Range %q", rc.hdr, cr)
				}
			}
			_, err = en.aws.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("aws.bin"), Range: aws.String("bytes=" + itoa(len(data)) + "-")})
			if awsCode(err) != "InvalidRange" {
				t.Fatalf("unsatisfiable range: %v", err)
			}

			// HEAD.
			st, err := en.minio.StatObject(ctx, "bkt", "dir/obj.bin", minio.StatObjectOptions{})
			if err != nil || st.Size != int64(len(data)) || st.ETag != md5hex(data) || st.LastModified.IsZero() {
				t.Fatalf("stat %+v %v", st, err)
			}
			// Every object is encrypted and says so (mc stat shows "Encrypted").
			if st.Metadata.Get("X-Amz-Server-Side-Encryption") != "AES256" {
				t.Fatalf("SSE header %q", st.Metadata.Get("X-Amz-Server-Side-Encryption"))
			}
			_, err = en.minio.StatObject(ctx, "bkt", "nope", minio.StatObjectOptions{})
			wantMinioErr(t, err, "NoSuchKey", 404)
			_, err = en.minio.StatObject(ctx, "nob", "nope", minio.StatObjectOptions{})
			if c, s := minioCode(err); s != 404 {
				t.Fatalf("missing bucket: %s %d", c, s)
			}

			// Conditions.
			etag := `"` + md5hex(data) + `"`
			past := st.LastModified.Add(-time.Hour)
			future := st.LastModified.Add(time.Hour)
			for _, cc := range []struct {
				name   string
				in     awss3.GetObjectInput
				status int
			}{
				{"if-match ok", awss3.GetObjectInput{IfMatch: aws.String(etag)}, 200},
				{"if-match bad", awss3.GetObjectInput{IfMatch: aws.String(`"abc"`)}, 412},
				{"if-none-match hit", awss3.GetObjectInput{IfNoneMatch: aws.String(etag)}, 304},
				{"if-none-match miss", awss3.GetObjectInput{IfNoneMatch: aws.String(`"abc"`)}, 200},
				{"if-modified-since past", awss3.GetObjectInput{IfModifiedSince: &past}, 200},
				{"if-modified-since future", awss3.GetObjectInput{IfModifiedSince: &future}, 304},
				{"if-unmodified-since past", awss3.GetObjectInput{IfUnmodifiedSince: &past}, 412},
				{"if-unmodified-since future", awss3.GetObjectInput{IfUnmodifiedSince: &future}, 200},
				{"if-match wins over if-unmodified-since", awss3.GetObjectInput{IfMatch: aws.String(etag), IfUnmodifiedSince: &past}, 200},
			} {
				in := cc.in
				in.Bucket, in.Key = aws.String("bkt"), aws.String("aws.bin")
				out, err := en.aws.GetObject(ctx, &in)
				status := 200
				if err != nil {
					var re interface{ HTTPStatusCode() int }
					if !errors.As(err, &re) {
						t.Fatalf("%s: %v", cc.name, err)
					}
					status = re.HTTPStatusCode()
				} else {
					got, _ := io.ReadAll(out.Body)
					out.Body.Close()
					if !bytes.Equal(got, data) {
						t.Fatalf("%s: wrong content", cc.name)
					}
				}
				if status != cc.status {
					t.Fatalf("%s: status %d, want %d", cc.name, status, cc.status)
				}
			}
			// HEAD with a failing If-None-Match is 304 too.
			resp := en.do(t, "HEAD", "/bkt/aws.bin", http.Header{"If-None-Match": {etag}}, nil)
			if resp.StatusCode != 304 || resp.Header.Get("ETag") != etag {
				t.Fatalf("HEAD if-none-match: %d %q", resp.StatusCode, resp.Header.Get("ETag"))
			}

			// Without a Content-Type, S3's default; response-* overrides.
			if resp := en.do(t, "PUT", "/bkt/untyped", nil, []byte("u")); resp.StatusCode != 200 {
				t.Fatalf("raw put: %d", resp.StatusCode)
			}
			resp = en.do(t, "GET", "/bkt/untyped", nil, nil)
			if b, _ := io.ReadAll(resp.Body); resp.Header.Get("Content-Type") != "binary/octet-stream" || string(b) != "u" {
				t.Fatalf("untyped: %q %q", resp.Header.Get("Content-Type"), b)
			}
			resp = en.do(t, "GET", "/bkt/aws.bin?response-content-type=text%2Fplain&response-content-disposition=attachment", nil, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Content-Disposition") != "attachment" {
				t.Fatalf("overrides: %d %v", resp.StatusCode, resp.Header)
			}

			// Directory keys, and delete.
			en.put(t, "bkt", "emptydir/", nil, minio.PutObjectOptions{})
			if st, err := en.minio.StatObject(ctx, "bkt", "emptydir/", minio.StatObjectOptions{}); err != nil || st.Size != 0 {
				t.Fatalf("dir key: %+v %v", st, err)
			}
			for _, k := range []string{"dir/obj.bin", "emptydir/", "aws.bin", "untyped", "never-existed"} {
				if err := en.minio.RemoveObject(ctx, "bkt", k, minio.RemoveObjectOptions{}); err != nil {
					t.Fatalf("remove %s: %v", k, err)
				}
			}
			if keys := en.keysOf(t, "bkt"); len(keys) != 0 {
				t.Fatalf("left %v", keys)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestUserMetadata(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	en.mkBucket(t, "meta")
	_, err := en.aws.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: aws.String("meta"), Key: aws.String("doc.txt"), Body: strings.NewReader("hello"),
		Metadata:           map[string]string{"Color": "blue", "mtime": "1700000000.5"},
		ContentType:        aws.String("text/plain; charset=utf-8"),
		ContentDisposition: aws.String(`attachment; filename="doc.txt"`),
		ContentLanguage:    aws.String("en"),
		CacheControl:       aws.String("max-age=60"),
		ContentEncoding:    aws.String("identity"),
	})
	if err != nil {
		t.Fatal(err)
	}
	head, err := en.aws.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("meta"), Key: aws.String("doc.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if head.Metadata["color"] != "blue" || head.Metadata["mtime"] != "1700000000.5" || len(head.Metadata) != 2 {
		t.Fatalf("metadata %v", head.Metadata)
	}
	if aws.ToString(head.ContentType) != "text/plain; charset=utf-8" || aws.ToString(head.ContentDisposition) != `attachment; filename="doc.txt"` ||
		aws.ToString(head.ContentLanguage) != "en" || aws.ToString(head.CacheControl) != "max-age=60" || aws.ToString(head.ContentEncoding) != "identity" {
		t.Fatalf("system metadata %+v", head)
	}
	// The mount sees the same metadata (user.* xattrs), and no aws-chunked encoding.
	info, err := en.e.StatObject(ctx, "meta", "doc.txt", fs.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.UserMeta["color"] != "blue" || info.System.ContentEncoding != "identity" || info.Uid != 1000 || info.Gid != 1000 {
		t.Fatalf("engine sees %+v", info)
	}
	// Too much metadata is refused and nothing stored.
	_, err = en.aws.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("meta"), Key: aws.String("big-meta"), Body: strings.NewReader("x"),
		Metadata: map[string]string{"a": strings.Repeat("v", 3000)}})
	if awsCode(err) != "MetadataTooLarge" {
		t.Fatalf("big metadata: %v", err)
	}
	if keys := en.keysOf(t, "meta"); len(keys) != 1 {
		t.Fatalf("keys %v", keys)
	}
}

func TestChangesReachOtherFrontends(t *testing.T) {
	en := newEnv(t, false)
	ch, cancel := en.e.Subscribe()
	defer cancel()
	en.mkBucket(t, "notify")
	en.put(t, "notify", "k", []byte("v"), minio.PutObjectOptions{})
	deadline := time.After(10 * time.Second)
	for {
		select {
		case c := <-ch:
			if c.Name == "k" && !c.Removed {
				if c.Origin != "s3" {
					t.Fatalf("origin %q", c.Origin)
				}
				return
			}
		case <-deadline:
			t.Fatal("no change published for the PUT")
		}
	}
}

func TestInvalidKeys(t *testing.T) {
	en := newEnv(t, false)
	ctx := context.Background()
	en.mkBucket(t, "keys")
	en.put(t, "keys", "a", []byte("file"), minio.PutObjectOptions{})
	en.put(t, "keys", "d/x", []byte("inner"), minio.PutObjectOptions{})

	_, err := en.minio.PutObject(ctx, "keys", "a/b", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	wantMinioErr(t, err, "XMinioParentIsObject", 400)
	_, err = en.minio.PutObject(ctx, "keys", "d", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	wantMinioErr(t, err, "XMinioObjectExistsAsDirectory", 409)
	_, err = en.minio.PutObject(ctx, "keys", "a/", strings.NewReader(""), 0, minio.PutObjectOptions{})
	wantMinioErr(t, err, "XMinioParentIsObject", 400)

	for _, p := range []string{"/keys/x/../y", "/keys/x//y", "/keys/./y", "/keys/x/%00", "/keys//lead"} {
		resp := en.do(t, "PUT", p, nil, []byte("x"))
		if resp.StatusCode != 400 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		if e := readError(t, resp); e.Code != "InvalidArgument" || !strings.Contains(e.Message, "segment") && !strings.Contains(e.Message, "NUL") && !strings.Contains(e.Message, "'/'") {
			t.Fatalf("%s: %+v", p, e)
		}
	}
	resp := en.do(t, "PUT", "/keys/"+strings.Repeat("s/", 513), nil, nil)
	if resp.StatusCode != 400 || readError(t, resp).Code != "KeyTooLongError" {
		t.Fatalf("long key: %d", resp.StatusCode)
	}
	resp = en.do(t, "PUT", "/keys/"+strings.Repeat("n", 256), nil, []byte("x"))
	if e := readError(t, resp); resp.StatusCode != 400 || e.Code != "InvalidArgument" {
		t.Fatalf("long segment: %d %+v", resp.StatusCode, e)
	}
	// Multipart refuses the same up front.
	resp = en.do(t, "POST", "/keys/a/b?uploads", nil, nil)
	if resp.StatusCode != 400 || readError(t, resp).Code != "XMinioParentIsObject" {
		t.Fatalf("upload under a file: %d", resp.StatusCode)
	}
	// A GET of such a key is simply missing.
	resp = en.do(t, "GET", "/keys/x/../a", nil, nil)
	if resp.StatusCode != 404 || readError(t, resp).Code != "NoSuchKey" {
		t.Fatalf("get ..: %d", resp.StatusCode)
	}

	keys := en.keysOf(t, "keys")
	if strings.Join(keys, ",") != "a,d/x" {
		t.Fatalf("stored %v", keys)
	}
}

// tamperTransport flips one payload byte of PUT bodies in transit, after the
// client signed them.
type tamperTransport struct {
	base http.RoundTripper
	at   int
}

func (tt tamperTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		b[len(b)-tt.at] ^= 1
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = nil
	}
	return tt.base.RoundTrip(r)
}

func TestTamperedBodyStoresNothing(t *testing.T) {
	en := newEnv(t, false)
	ctx := context.Background()
	en.mkBucket(t, "tamper")
	data := randData(200 << 10)

	// minio-go over http signs every chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): a byte
	// flipped in the last chunk's data fails that chunk's signature.
	u := strings.TrimPrefix(en.srv.URL, "http://")
	bad, err := minio.New(u, &minio.Options{Creds: miniocreds.NewStaticV4(testAccess, testSecret, ""), Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath, Transport: tamperTransport{base: en.srv.Client().Transport, at: 200}, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.PutObject(ctx, "tamper", "victim", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	if c, s := minioCode(err); c != "SignatureDoesNotMatch" || s != 403 {
		t.Fatalf("tampered chunk: %s %d (%v)", c, s, err)
	}

	// A plain body with a Content-MD5 that does not match: BadDigest.
	resp := en.do(t, "PUT", "/tamper/victim", http.Header{"Content-Md5": {"AAAAAAAAAAAAAAAAAAAAAA=="}}, data)
	if resp.StatusCode != 400 || readError(t, resp).Code != "BadDigest" {
		t.Fatalf("bad md5: %d", resp.StatusCode)
	}
	// aws-sdk-go-v2 over http signs the SHA-256: a flipped byte is a mismatch.
	badAWS := awss3.New(awss3.Options{Region: "us-east-1", Credentials: en.aws.Options().Credentials,
		BaseEndpoint: aws.String(en.srv.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		HTTPClient: &http.Client{Transport: tamperTransport{base: en.srv.Client().Transport, at: 1}}})
	_, err = badAWS.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("tamper"), Key: aws.String("victim"), Body: bytes.NewReader(data)})
	if c := awsCode(err); c != "XAmzContentSHA256Mismatch" && c != "BadDigest" {
		t.Fatalf("tampered aws body: %v", err)
	}
	if keys := en.keysOf(t, "tamper"); len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}
}

// corruptObjects flips a byte at off (from the end if negative) of every chunk object.
func corruptObjects(t *testing.T, en *env, off int64) {
	t.Helper()
	if err := en.e.SyncAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(en.store.Dir(), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		i := off
		if i < 0 {
			i += int64(len(b))
		}
		b[i] ^= 0x40
		return os.WriteFile(p, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTamperedStoreNeverReturnsWrongBytes(t *testing.T) {
	en := newEnv(t, false)
	ctx := context.Background()
	en.mkBucket(t, "corrupt")
	data := randData(3 * testChunk)
	en.put(t, "corrupt", "late", data, minio.PutObjectOptions{})
	// Every chunk's last package is broken: the first block read before the status
	// spans two chunks, so the failure comes before the header: 500 InternalError.
	corruptObjects(t, en, -5)
	resp := en.do(t, "GET", "/corrupt/late", nil, nil)
	if resp.StatusCode != 500 || readError(t, resp).Code != "InternalError" {
		t.Fatalf("corrupt first block: %d", resp.StatusCode)
	}
	// A range starting in the last chunk is served from there: the tail is broken too.
	_, err := en.aws.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("corrupt"), Key: aws.String("late"), Range: aws.String("bytes=-10")})
	if awsCode(err) != "InternalError" {
		t.Fatalf("corrupt range: %v", err)
	}
}

func TestCorruptionAfterHeadersAbortsTheResponse(t *testing.T) {
	en := newEnv(t, false)
	en.mkBucket(t, "corrupt")
	// 1 MiB in 8 chunks: the first 256 KiB (two chunks) are read before the status.
	data := randData(8 * testChunk)
	en.put(t, "corrupt", "obj", data, minio.PutObjectOptions{})
	if err := en.e.SyncAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Break every chunk, then restore them in order until the first block reads:
	// what is still broken then fails only after the header went out.
	type file struct {
		path string
		data []byte
	}
	// In chunk order (sealers store chunks in parallel, so not in the order of their
	// files' times): restoring from the first chunk on restores the first block first.
	info, err := en.e.StatObject(context.Background(), "corrupt", "obj", fs.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var files []file
	err = en.db.View(func(tx *meta.Tx) error {
		return tx.Chunks(meta.Ino(info.Ino), 0, func(c meta.Chunk) bool {
			id := objstore.ID(c.Object).String()
			p := filepath.Join(en.store.Dir(), id[:2], id)
			b, _ := os.ReadFile(p)
			files = append(files, file{p, b})
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 8 {
		t.Fatalf("%d chunk objects, want 8", len(files))
	}
	corruptObjects(t, en, -5)
	restored := 0
	var resp *http.Response
	for _, f := range files {
		resp = en.do(t, "GET", "/corrupt/obj", nil, nil)
		if resp.StatusCode == 200 {
			break
		}
		io.Copy(io.Discard, resp.Body)
		os.WriteFile(f.path, f.data, 0o600)
		restored++
	}
	if resp.StatusCode != 200 || restored == len(files) {
		t.Fatalf("status %d after restoring %d chunks", resp.StatusCode, restored)
	}
	// The client must see a broken body (the handler aborts; net/http also cuts a body
	// shorter than its Content-Length), and what it got must be the object's prefix.
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read %d bytes without error: a corrupt object looked whole", len(got))
	}
	if len(got) >= len(data) || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("got %d bytes, not a prefix of the object", len(got))
	}
}

func TestDeleteObjects(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	en.mkBucket(t, "del")
	for _, k := range []string{"a", "b", "c/d", "e"} {
		en.put(t, "del", k, []byte(k), minio.PutObjectOptions{})
	}
	out, err := en.aws.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("a")}, {Key: aws.String("c/d")}, {Key: aws.String("missing")}, {Key: aws.String("e"), VersionId: aws.String("v1")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 3 || len(out.Errors) != 1 || aws.ToString(out.Errors[0].Key) != "e" || aws.ToString(out.Errors[0].Code) != "NoSuchVersion" {
		t.Fatalf("deleted %+v errors %+v", out.Deleted, out.Errors)
	}
	out, err = en.aws.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{
		Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: aws.String("b")}},
	}})
	if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 0 {
		t.Fatalf("quiet: %+v %v", out, err)
	}
	if keys := en.keysOf(t, "del"); strings.Join(keys, ",") != "e" {
		t.Fatalf("left %v", keys)
	}
	// Over the limit.
	var b strings.Builder
	b.WriteString("<Delete>")
	for i := 0; i < 1001; i++ {
		b.WriteString("<Object><Key>e</Key></Object>")
	}
	b.WriteString("</Delete>")
	resp := en.do(t, "POST", "/del?delete", nil, []byte(b.String()))
	if resp.StatusCode != 400 || readError(t, resp).Code != "MalformedXML" {
		t.Fatalf("1001 keys: %d", resp.StatusCode)
	}
	if keys := en.keysOf(t, "del"); len(keys) != 1 {
		t.Fatalf("left %v", keys)
	}
}

// Tags would be lost: a PUT, copy or multipart upload that asks for them is refused,
// and nothing is stored.
func TestTaggingRefused(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	en.mkBucket(t, "tags")
	_, err := en.minio.PutObject(ctx, "tags", "t", bytes.NewReader([]byte("x")), 1,
		minio.PutObjectOptions{UserTags: map[string]string{"team": "a"}})
	if minio.ToErrorResponse(err).Code != "NotImplemented" {
		t.Fatalf("PUT with tags: %v, want NotImplemented", err)
	}
	_, err = en.aws.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("tags"), Key: aws.String("m"),
		Tagging: aws.String("team=a")})
	if awsCode(err) != "NotImplemented" {
		t.Fatalf("CreateMultipartUpload with tags: %v, want NotImplemented", err)
	}
	if keys := en.keysOf(t, "tags"); len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}
	lu, err := en.aws.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String("tags")})
	if err != nil || len(lu.Uploads) != 0 {
		t.Fatalf("uploads %+v %v", lu, err)
	}
}
