package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
)

func ssecKey(t *testing.T, b byte) encrypt.ServerSide {
	t.Helper()
	k, err := encrypt.NewSSEC(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ssecHeaders(b byte, prefix string) http.Header {
	k := bytes.Repeat([]byte{b}, 32)
	sum := md5.Sum(k)
	return http.Header{
		prefix + hdrSSECAlgorithm: {"AES256"},
		prefix + hdrSSECKey:       {base64.StdEncoding.EncodeToString(k)},
		prefix + hdrSSECKeyMD5:    {base64.StdEncoding.EncodeToString(sum[:])},
	}
}

func TestSSEHeaders(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	mc := en.minio
	en.mkBucket(t, "sse")
	data := randData(testChunk + 5)

	// SSE-S3.
	en.put(t, "sse", "s3", data, minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()})
	st, err := mc.StatObject(ctx, "sse", "s3", minio.StatObjectOptions{})
	if err != nil || st.Metadata.Get(hdrSSE) != "AES256" || st.Metadata.Get(hdrSSEKMSKeyID) != "" {
		t.Fatalf("SSE-S3: %v %v", st.Metadata, err)
	}

	// SSE-KMS with a key and a context.
	kms, err := encrypt.NewSSEKMS(testKMSKey, map[string]string{"purpose": "test"})
	if err != nil {
		t.Fatal(err)
	}
	en.put(t, "sse", "kms", data, minio.PutObjectOptions{ServerSideEncryption: kms})
	st, err = mc.StatObject(ctx, "sse", "kms", minio.StatObjectOptions{})
	if err != nil || st.Metadata.Get(hdrSSE) != "aws:kms" || st.Metadata.Get(hdrSSEKMSKeyID) != "arn:aws:kms:"+testKMSKey {
		t.Fatalf("SSE-KMS: %v %v", st.Metadata, err)
	}
	if info, _ := en.e.StatObject(ctx, "sse", "kms", fs.GetOptions{}); info.SSEType != keys.SSEKMS || info.KeyName != testKMSKey {
		t.Fatalf("engine: %s %q", info.SSEType, info.KeyName)
	}
	// aws-sdk with an ARN-style key ID.
	out, err := en.aws.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("sse"), Key: aws.String("kms2"), Body: bytes.NewReader(data),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("arn:aws:kms:" + testKMSKey)})
	if err != nil || out.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(out.SSEKMSKeyId) != "arn:aws:kms:"+testKMSKey {
		t.Fatalf("aws SSE-KMS: %+v %v", out, err)
	}
	// An unknown key: 403, nothing stored.
	bad, _ := encrypt.NewSSEKMS("no-such-key", nil)
	_, err = mc.PutObject(ctx, "sse", "nokey", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: bad})
	wantMinioErr(t, err, "AccessDenied", 403)
	// A context that is not base64 JSON.
	resp := en.do(t, "PUT", "/sse/ctx", http.Header{hdrSSE: {"aws:kms"}, hdrSSEContext: {base64.StdEncoding.EncodeToString([]byte("[1]"))}}, []byte("x"))
	if resp.StatusCode != 400 || readError(t, resp).Code != "InvalidArgument" {
		t.Fatalf("bad context: %d", resp.StatusCode)
	}
	resp = en.do(t, "PUT", "/sse/alg", http.Header{hdrSSE: {"DES"}}, []byte("x"))
	if resp.StatusCode != 400 || readError(t, resp).Code != "InvalidArgument" {
		t.Fatalf("bad algorithm: %d", resp.StatusCode)
	}

	// SSE-C.
	key1, key2 := ssecKey(t, 1), ssecKey(t, 2)
	en.put(t, "sse", "c", data, minio.PutObjectOptions{ServerSideEncryption: key1})
	if got := en.get(t, "sse", "c", minio.GetObjectOptions{ServerSideEncryption: key1}); !bytes.Equal(got, data) {
		t.Fatal("SSE-C round trip differs")
	}
	st, err = mc.StatObject(ctx, "sse", "c", minio.StatObjectOptions{ServerSideEncryption: key1})
	sum := md5.Sum(bytes.Repeat([]byte{1}, 32))
	if err != nil || st.Metadata.Get(hdrSSECAlgorithm) != "AES256" || st.Metadata.Get(hdrSSECKeyMD5) != base64.StdEncoding.EncodeToString(sum[:]) || st.Metadata.Get(hdrSSE) != "" {
		t.Fatalf("SSE-C stat: %v %v", st.Metadata, err)
	}
	_, err = mc.StatObject(ctx, "sse", "c", minio.StatObjectOptions{})
	if _, s := minioCode(err); s != 400 {
		t.Fatalf("SSE-C without key: %v", err)
	}
	resp = en.do(t, "GET", "/sse/c", nil, nil)
	if e := readError(t, resp); resp.StatusCode != 400 || e.Code != "InvalidRequest" || !strings.Contains(e.Message, "Server Side Encryption") {
		t.Fatalf("SSE-C GET without key: %d %+v", resp.StatusCode, e)
	}
	resp = en.do(t, "GET", "/sse/c", ssecHeaders(2, ""), nil)
	if resp.StatusCode != 403 || readError(t, resp).Code != "AccessDenied" {
		t.Fatalf("SSE-C wrong key: %d", resp.StatusCode)
	}
	_, err = mc.StatObject(ctx, "sse", "c", minio.StatObjectOptions{ServerSideEncryption: key2})
	if _, s := minioCode(err); s != 403 {
		t.Fatalf("SSE-C HEAD wrong key: %v", err)
	}
	resp = en.do(t, "GET", "/sse/s3", ssecHeaders(1, ""), nil)
	if resp.StatusCode != 400 || readError(t, resp).Code != "InvalidRequest" {
		t.Fatalf("key for a non-SSE-C object: %d", resp.StatusCode)
	}
	h := ssecHeaders(1, "")
	h.Set(hdrSSECKeyMD5, base64.StdEncoding.EncodeToString(make([]byte, 16)))
	resp = en.do(t, "PUT", "/sse/badmd5", h, []byte("x"))
	if resp.StatusCode != 400 || readError(t, resp).Code != "InvalidArgument" {
		t.Fatalf("bad key MD5: %d", resp.StatusCode)
	}
	h = ssecHeaders(1, "")
	h.Set(hdrSSE, "AES256")
	resp = en.do(t, "PUT", "/sse/both", h, []byte("x"))
	if resp.StatusCode != 400 || readError(t, resp).Code != "InvalidArgument" {
		t.Fatalf("SSE-C and SSE-S3: %d", resp.StatusCode)
	}
	if keys := en.keysOf(t, "sse"); strings.Join(keys, ",") != "c,kms,kms2,s3" {
		t.Fatalf("keys %v", keys)
	}
}

func TestSSECNeedsTLS(t *testing.T) {
	en := newEnv(t, false)
	en.mkBucket(t, "plain")
	// From loopback the key never crosses a network: plain HTTP is accepted.
	if resp := en.do(t, "PUT", "/plain/local", ssecHeaders(1, ""), []byte("x")); resp.StatusCode != 200 {
		t.Fatalf("SSE-C over http from loopback: %d %+v", resp.StatusCode, readError(t, resp))
	}
	if keys := en.keysOf(t, "plain"); strings.Join(keys, ",") != "local" {
		t.Fatalf("keys %v", keys)
	}
	// The same request as if from another host.
	en.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = "192.0.2.7:40000"
		en.server.ServeHTTP(w, r)
	})
	resp := en.do(t, "PUT", "/plain/c", ssecHeaders(1, ""), []byte("x"))
	if e := readError(t, resp); resp.StatusCode != 400 || e.Code != "InvalidRequest" || !strings.Contains(e.Message, "secure connection") {
		t.Fatalf("SSE-C over http: %d %+v", resp.StatusCode, e)
	}
	if keys := en.keysOf(t, "plain"); strings.Join(keys, ",") != "local" {
		t.Fatalf("stored %v", keys)
	}
	en.server.allowInsecureSSEC = true
	if resp := en.do(t, "PUT", "/plain/c", ssecHeaders(1, ""), []byte("x")); resp.StatusCode != 200 {
		t.Fatalf("allowed SSE-C over http: %d", resp.StatusCode)
	}
}

func TestCopyObject(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	mc := en.minio
	en.mkBucket(t, "src")
	en.mkBucket(t, "dst")
	data := randData(2*testChunk + 3)
	en.put(t, "src", "orig", data, minio.PutObjectOptions{ContentType: "text/x-orig", UserMetadata: map[string]string{"a": "1"}})

	// COPY directive keeps the metadata; the destination gets the bucket default SSE.
	_, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "dst", Object: "copy"}, minio.CopySrcOptions{Bucket: "src", Object: "orig"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := en.e.StatObject(ctx, "dst", "copy", fs.GetOptions{})
	if err != nil || info.UserMeta["a"] != "1" || info.System.ContentType != "text/x-orig" || info.ETag != md5hex(data) {
		t.Fatalf("COPY: %+v %v", info, err)
	}
	// REPLACE with aws-sdk (the key has characters that need encoding in the header).
	odd := "dir/ä b+c?d.txt"
	en.put(t, "src", odd, data, minio.PutObjectOptions{})
	_, err = en.aws.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("replaced"),
		CopySource: aws.String("src/" + pathEscape(odd)), MetadataDirective: types.MetadataDirectiveReplace,
		Metadata: map[string]string{"b": "2"}, ContentType: aws.String("text/x-new")})
	if err != nil {
		t.Fatal(err)
	}
	info, err = en.e.StatObject(ctx, "dst", "replaced", fs.GetOptions{})
	if err != nil || info.UserMeta["b"] != "2" || info.UserMeta["a"] != "" || info.System.ContentType != "text/x-new" {
		t.Fatalf("REPLACE: %+v %v", info, err)
	}

	// Onto itself without a change: refused; with REPLACE: fine.
	_, err = en.aws.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("orig"), CopySource: aws.String("src/orig")})
	if awsCode(err) != "InvalidRequest" {
		t.Fatalf("self copy: %v", err)
	}
	_, err = en.aws.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("orig"), CopySource: aws.String("src/orig"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"a": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := en.e.StatObject(ctx, "src", "orig", fs.GetOptions{}); info.UserMeta["a"] != "3" {
		t.Fatalf("self copy REPLACE: %v", info.UserMeta)
	}

	// Change of encryption: SSE-S3 -> SSE-C -> SSE-KMS, in place and across buckets.
	key1 := ssecKey(t, 7)
	_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "src", Object: "orig", Encryption: key1}, minio.CopySrcOptions{Bucket: "src", Object: "orig"})
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := en.e.StatObject(ctx, "src", "orig", fs.GetOptions{ClientKey: &[32]byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}}); info.SSEType != keys.SSEC {
		t.Fatalf("now %q", info.SSEType)
	}
	kms, _ := encrypt.NewSSEKMS(testKMSKey, nil)
	_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "dst", Object: "kms", Encryption: kms},
		minio.CopySrcOptions{Bucket: "src", Object: "orig", Encryption: key1})
	if err != nil {
		t.Fatal(err)
	}
	if got := en.get(t, "dst", "kms", minio.GetObjectOptions{}); !bytes.Equal(got, data) {
		t.Fatal("SSE-C -> SSE-KMS copy differs")
	}
	st, _ := mc.StatObject(ctx, "dst", "kms", minio.StatObjectOptions{})
	if st.Metadata.Get(hdrSSE) != "aws:kms" {
		t.Fatalf("copy SSE %v", st.Metadata)
	}
	// The source needs its key.
	_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "dst", Object: "x"}, minio.CopySrcOptions{Bucket: "src", Object: "orig"})
	if _, s := minioCode(err); s != 400 {
		t.Fatalf("copy of SSE-C without key: %v", err)
	}

	// Copy conditions.
	_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "dst", Object: "cond"}, minio.CopySrcOptions{Bucket: "dst", Object: "copy", MatchETag: "nope"})
	wantMinioErr(t, err, "PreconditionFailed", 412)
	_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "dst", Object: "cond"}, minio.CopySrcOptions{Bucket: "dst", Object: "copy", MatchETag: md5hex(data)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "dst", Object: "x"}, minio.CopySrcOptions{Bucket: "dst", Object: "missing"})
	wantMinioErr(t, err, "NoSuchKey", 404)
	_, err = en.aws.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("x"), CopySource: aws.String("src/orig?versionId=123")})
	if awsCode(err) != "NoSuchVersion" {
		t.Fatalf("version: %v", err)
	}
	if keys := en.keysOf(t, "dst"); strings.Join(keys, ",") != "cond,copy,kms,replaced" {
		t.Fatalf("dst keys %v", keys)
	}
}

func pathEscape(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}

// The SSE-KMS encryption context is bound to the object's key, kept, and echoed as AWS
// echoes it: base64 JSON with sorted keys.
func TestSSEKMSContextHeaders(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	en.mkBucket(t, "kctx")
	data := randData(testChunk + 9)
	userCtx := map[string]string{"tenant": "42", "purpose": "<invoices & more>"}
	// Sorted, not HTML-escaped: the one spelling the server must produce.
	wantHdr := base64.StdEncoding.EncodeToString([]byte(`{"purpose":"<invoices & more>","tenant":"42"}`))
	decode := func(v string) map[string]string {
		t.Helper()
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("context header %q: %v", v, err)
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("context header %q: %v", raw, err)
		}
		return m
	}
	engineCtx := func(key string) map[string]string {
		t.Helper()
		info, err := en.e.StatObject(ctx, "kctx", key, fs.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ei, err := en.e.Encryption(ctx, info.Ino)
		if err != nil {
			t.Fatal(err)
		}
		return ei.KMSContext
	}

	// minio-go: PUT, then HEAD and GET show the same context and the bytes come back.
	kms, err := encrypt.NewSSEKMS(testKMSKey, userCtx)
	if err != nil {
		t.Fatal(err)
	}
	en.put(t, "kctx", "m", data, minio.PutObjectOptions{ServerSideEncryption: kms})
	st, err := en.minio.StatObject(ctx, "kctx", "m", minio.StatObjectOptions{})
	if err != nil || st.Metadata.Get(hdrSSEContext) != wantHdr || st.Metadata.Get(hdrSSE) != "aws:kms" {
		t.Fatalf("HEAD: context %q, %v", st.Metadata.Get(hdrSSEContext), err)
	}
	if got := en.get(t, "kctx", "m", minio.GetObjectOptions{}); !bytes.Equal(got, data) {
		t.Fatal("GET returned other bytes")
	}
	resp := en.do(t, "GET", "/kctx/m", nil, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(hdrSSEContext) != wantHdr {
		t.Fatalf("GET: %d, context %q", resp.StatusCode, resp.Header.Get(hdrSSEContext))
	}
	if got := engineCtx("m"); !maps.Equal(got, userCtx) {
		t.Fatalf("sealed record context %v", got)
	}

	// aws-sdk: PutObject, CopyObject (the destination's context) and
	// CreateMultipartUpload echo it.
	awsCtx := aws.String(base64.StdEncoding.EncodeToString([]byte(`{"b":"2","a":"1"}`)))
	wantAWS := map[string]string{"a": "1", "b": "2"}
	put, err := en.aws.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("kctx"), Key: aws.String("a"), Body: bytes.NewReader(data),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(testKMSKey), SSEKMSEncryptionContext: awsCtx})
	if err != nil || !maps.Equal(decode(aws.ToString(put.SSEKMSEncryptionContext)), wantAWS) {
		t.Fatalf("aws PUT: %v, %v", aws.ToString(put.SSEKMSEncryptionContext), err)
	}
	cp, err := en.aws.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("kctx"), Key: aws.String("copy"), CopySource: aws.String("kctx/m"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: awsCtx})
	if err != nil || !maps.Equal(decode(aws.ToString(cp.SSEKMSEncryptionContext)), wantAWS) {
		t.Fatalf("aws copy: %v, %v", aws.ToString(cp.SSEKMSEncryptionContext), err)
	}
	if got := engineCtx("copy"); !maps.Equal(got, wantAWS) {
		t.Fatalf("copy sealed with context %v", got)
	}
	if got := en.get(t, "kctx", "copy", minio.GetObjectOptions{}); !bytes.Equal(got, data) {
		t.Fatal("copy returned other bytes")
	}
	up, err := en.aws.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("kctx"), Key: aws.String("mp"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: awsCtx})
	if err != nil || !maps.Equal(decode(aws.ToString(up.SSEKMSEncryptionContext)), wantAWS) {
		t.Fatalf("aws create upload: %v, %v", aws.ToString(up.SSEKMSEncryptionContext), err)
	}
	part, err := en.aws.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("kctx"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = en.aws.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("kctx"), Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := engineCtx("mp"); !maps.Equal(got, wantAWS) {
		t.Fatalf("multipart object sealed with context %v", got)
	}
	if got := en.get(t, "kctx", "mp", minio.GetObjectOptions{}); !bytes.Equal(got, data) {
		t.Fatal("multipart object returned other bytes")
	}
	resp = en.do(t, "HEAD", "/kctx/mp", nil, nil)
	resp.Body.Close()
	if got := decode(resp.Header.Get(hdrSSEContext)); !maps.Equal(got, wantAWS) {
		t.Fatalf("HEAD of the multipart object: %v", got)
	}

	// No context: no header.
	en.put(t, "kctx", "plain", data, minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()})
	resp = en.do(t, "HEAD", "/kctx/plain", nil, nil)
	resp.Body.Close()
	if v := resp.Header.Get(hdrSSEContext); v != "" {
		t.Fatalf("object without a context shows %q", v)
	}

	// Refused with InvalidArgument, storing nothing: a context without aws:kms, or one
	// that names the engine's own "bucket" key.
	ctxHdr := base64.StdEncoding.EncodeToString([]byte(`{"a":"1"}`))
	for desc, h := range map[string]http.Header{
		"no SSE":       {hdrSSEContext: {ctxHdr}},
		"AES256":       {hdrSSE: {"AES256"}, hdrSSEContext: {ctxHdr}},
		"reserved key": {hdrSSE: {"aws:kms"}, hdrSSEContext: {base64.StdEncoding.EncodeToString([]byte(`{"bucket":"other"}`))}},
	} {
		resp := en.do(t, "PUT", "/kctx/refused", h, []byte("x"))
		if e := readError(t, resp); resp.StatusCode != 400 || e.Code != "InvalidArgument" {
			t.Errorf("%s: %d %+v", desc, resp.StatusCode, e)
		}
		resp = en.do(t, "POST", "/kctx/refused?uploads", h, nil)
		if e := readError(t, resp); resp.StatusCode != 400 || e.Code != "InvalidArgument" {
			t.Errorf("%s, create upload: %d %+v", desc, resp.StatusCode, e)
		}
	}
	if slices.Contains(en.keysOf(t, "kctx"), "refused") {
		t.Fatal("a refused PUT stored an object")
	}
	if lu, err := en.e.ListUploads(ctx, "kctx", fs.ListUploadsOptions{}); err != nil || len(lu.Uploads) != 0 {
		t.Fatalf("refused uploads left %+v, %v", lu.Uploads, err)
	}
}
