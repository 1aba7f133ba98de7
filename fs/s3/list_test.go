package s3

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
)

func TestListObjects(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	en.mkBucket(t, "lst")
	all := []string{"a b/1", "a b/2", "a+c", "dir/x/y", "dir/z", "top1", "top2", "top3"}
	for _, k := range all {
		en.put(t, "lst", k, []byte(k), minio.PutObjectOptions{})
	}

	// V2, two keys a page, no delimiter: every key once, in order.
	var got []string
	var token *string
	pages := 0
	for {
		out, err := en.aws.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("lst"), MaxKeys: aws.Int32(2), ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if aws.ToInt32(out.KeyCount) != int32(len(out.Contents)) {
			t.Fatalf("KeyCount %d for %d", aws.ToInt32(out.KeyCount), len(out.Contents))
		}
		for _, o := range out.Contents {
			got = append(got, aws.ToString(o.Key))
			if aws.ToInt64(o.Size) != int64(len(aws.ToString(o.Key))) || aws.ToString(o.ETag) != `"`+md5hex([]byte(aws.ToString(o.Key)))+`"` {
				t.Fatalf("entry %+v", o)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		token = out.NextContinuationToken
	}
	if !slices.Equal(got, all) || pages != 4 {
		t.Fatalf("v2 pages %d: %v", pages, got)
	}

	// V2 with a delimiter and start-after.
	out, err := en.aws.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("lst"), Delimiter: aws.String("/"), StartAfter: aws.String("a+c"), FetchOwner: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var cps []string
	for _, p := range out.CommonPrefixes {
		cps = append(cps, aws.ToString(p.Prefix))
	}
	if !slices.Equal(cps, []string{"dir/"}) || len(out.Contents) != 3 || out.Contents[0].Owner == nil || aws.ToString(out.Contents[0].Owner.ID) != ownerID {
		t.Fatalf("delimited: %v %+v", cps, out.Contents)
	}

	// V1 paging with a delimiter, one entry a page: markers carry over common prefixes.
	var seen []string
	marker := ""
	for i := 0; i < 20; i++ {
		res, err := en.aws.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: aws.String("lst"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1), Marker: aws.String(marker)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Contents {
			seen = append(seen, aws.ToString(o.Key))
		}
		for _, p := range res.CommonPrefixes {
			seen = append(seen, aws.ToString(p.Prefix))
		}
		if !aws.ToBool(res.IsTruncated) {
			break
		}
		marker = aws.ToString(res.NextMarker)
	}
	if want := []string{"a b/", "a+c", "dir/", "top1", "top2", "top3"}; !slices.Equal(seen, want) {
		t.Fatalf("v1 delimited pages: %v, want %v", seen, want)
	}

	// minio-go (v2 with prefix, recursive and not).
	var mk []string
	for o := range en.minio.ListObjects(ctx, "lst", minio.ListObjectsOptions{Prefix: "dir/"}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		mk = append(mk, o.Key)
	}
	slices.Sort(mk) // minio-go sends objects, then prefixes
	if !slices.Equal(mk, []string{"dir/x/", "dir/z"}) {
		t.Fatalf("minio non-recursive: %v", mk)
	}

	// encoding-type=url: names come URL-encoded, the client decodes them.
	resp := en.do(t, "GET", "/lst?list-type=2&encoding-type=url&delimiter=%2F&prefix=a", nil, nil)
	body, _ := io.ReadAll(resp.Body)
	var lr struct {
		EncodingType   string
		Prefix         string
		Contents       []struct{ Key string }
		CommonPrefixes []struct{ Prefix string }
	}
	if err := xml.Unmarshal(body, &lr); err != nil {
		t.Fatal(err)
	}
	if lr.EncodingType != "url" || len(lr.Contents) != 1 || lr.Contents[0].Key != "a%2Bc" || len(lr.CommonPrefixes) != 1 || lr.CommonPrefixes[0].Prefix != "a+b/" {
		t.Fatalf("encoded: %s", body)
	}
	if k, _ := url.QueryUnescape(lr.Contents[0].Key); k != "a+c" {
		t.Fatalf("decoded %q", k)
	}
	// V1 encodes markers too.
	resp = en.do(t, "GET", "/lst?encoding-type=url&max-keys=1&marker=a%20b%2F1", nil, nil)
	body, _ = io.ReadAll(resp.Body)
	if !bytes.Contains(body, []byte("<Marker>a+b/1</Marker>")) || !bytes.Contains(body, []byte("<NextMarker>a+b/2</NextMarker>")) {
		t.Fatalf("v1 encoded markers: %s", body)
	}

	// Errors.
	_, err = en.aws.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("nobucket")})
	if awsCode(err) != "NoSuchBucket" {
		t.Fatalf("missing bucket: %v", err)
	}
	_, err = en.aws.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("lst"), ContinuationToken: aws.String("!!!")})
	if awsCode(err) != "InvalidArgument" {
		t.Fatalf("bad token: %v", err)
	}
	_, err = en.aws.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("lst"), EncodingType: types.EncodingType("base64")})
	if awsCode(err) != "InvalidArgument" {
		t.Fatalf("bad encoding: %v", err)
	}
	out, err = en.aws.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("lst"), MaxKeys: aws.Int32(0)})
	if err != nil || len(out.Contents) != 0 || aws.ToBool(out.IsTruncated) {
		t.Fatalf("max-keys 0: %+v %v", out, err)
	}
}

func TestMultipart(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	c := en.aws
	en.mkBucket(t, "mpu")
	const mib = 1 << 20
	parts := [][]byte{randData(5 * mib), randData(5 * mib), randData(1234)}

	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big/obj"),
		Metadata: map[string]string{"k": "v"}, ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(testKMSKey)})
	if err != nil {
		t.Fatal(err)
	}
	if up.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatalf("create SSE %q", up.ServerSideEncryption)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("big/obj"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ETag) != `"`+md5hex(p)+`"` {
			t.Fatalf("part %d etag %s", i+1, aws.ToString(out.ETag))
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	lp, err := c.ListParts(ctx, &awss3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("big/obj"), UploadId: up.UploadId, MaxParts: aws.Int32(2)})
	if err != nil || len(lp.Parts) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToString(lp.NextPartNumberMarker) != "2" || aws.ToInt64(lp.Parts[1].Size) != 5*mib {
		t.Fatalf("list parts %+v %v", lp, err)
	}
	lu, err := c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(up.UploadId) || aws.ToString(lu.Uploads[0].Key) != "big/obj" {
		t.Fatalf("list uploads %+v %v", lu, err)
	}
	if keys := en.keysOf(t, "mpu"); len(keys) != 0 {
		t.Fatalf("visible before completion: %v", keys)
	}

	// Bad completions change nothing.
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big/obj"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{done[1], done[0]}}})
	if awsCode(err) != "InvalidPartOrder" {
		t.Fatalf("order: %v", err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big/obj"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{done[0], {PartNumber: aws.Int32(2), ETag: aws.String(`"00"`)}}}})
	if awsCode(err) != "InvalidPart" {
		t.Fatalf("etag: %v", err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big/obj"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{done[2], {PartNumber: aws.Int32(4), ETag: done[2].ETag}}}})
	if awsCode(err) != "InvalidPart" {
		t.Fatalf("missing part: %v", err)
	}
	// An upload ID used under another key is no such upload.
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("other"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if awsCode(err) != "NoSuchUpload" {
		t.Fatalf("other key: %v", err)
	}

	res, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big/obj"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(res.ETag); !strings.HasSuffix(etag, `-3"`) || len(etag) != 36 {
		t.Fatalf("etag %s", etag)
	}
	want := bytes.Join(parts, nil)
	if got := en.get(t, "mpu", "big/obj", minio.GetObjectOptions{}); !bytes.Equal(got, want) {
		t.Fatalf("assembled object differs (%d bytes)", len(got))
	}
	head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big/obj")})
	if err != nil || head.Metadata["k"] != "v" || head.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(head.ETag) != aws.ToString(res.ETag) {
		t.Fatalf("head %+v %v", head, err)
	}

	// UploadPartCopy of a range, then abort: nothing left anywhere.
	up2, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("copy")})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: aws.String("mpu"), Key: aws.String("copy"), UploadId: up2.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String("mpu/big/obj"), CopySourceRange: aws.String("bytes=100-1099")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cp.CopyPartResult.ETag) != `"`+md5hex(want[100:1100])+`"` {
		t.Fatalf("copy part etag %s", aws.ToString(cp.CopyPartResult.ETag))
	}
	_, err = c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: aws.String("mpu"), Key: aws.String("copy"), UploadId: up2.UploadId,
		PartNumber: aws.Int32(2), CopySource: aws.String("mpu/big/obj"), CopySourceRange: aws.String("bytes=0-99999999")})
	if awsCode(err) != "InvalidRange" {
		t.Fatalf("copy range: %v", err)
	}
	_, err = c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("copy"), UploadId: up2.UploadId,
		PartNumber: aws.Int32(10001), Body: strings.NewReader("x")})
	if awsCode(err) != "InvalidArgument" {
		t.Fatalf("part 10001: %v", err)
	}
	// EntityTooSmall: a small first part.
	p2, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("copy"), UploadId: up2.UploadId,
		PartNumber: aws.Int32(2), Body: strings.NewReader("tail")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("copy"), UploadId: up2.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: cp.CopyPartResult.ETag}, {PartNumber: aws.Int32(2), ETag: p2.ETag}}}})
	if awsCode(err) != "EntityTooSmall" {
		t.Fatalf("too small: %v", err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("copy"), UploadId: up2.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("copy"), UploadId: up2.UploadId})
	if awsCode(err) != "NoSuchUpload" {
		t.Fatalf("abort twice: %v", err)
	}
	lu, err = c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(lu.Uploads) != 0 {
		t.Fatalf("uploads left %+v %v", lu.Uploads, err)
	}
	if keys := en.keysOf(t, "mpu"); strings.Join(keys, ",") != "big/obj" {
		t.Fatalf("keys %v", keys)
	}
}

func TestMultipartSSEC(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	en.mkBucket(t, "mpc")
	key := ssecKey(t, 9)
	data := randData(6<<20 + 17)
	// minio-go splits this into parts itself (PartSize 5 MiB) with the SSE-C headers
	// on create, every part and complete.
	info, err := en.minio.PutObject(ctx, "mpc", "obj", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ServerSideEncryption: key, PartSize: 5 << 20, DisableContentSha256: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(info.ETag, "-2") {
		t.Fatalf("etag %s", info.ETag)
	}
	if got := en.get(t, "mpc", "obj", minio.GetObjectOptions{ServerSideEncryption: key}); !bytes.Equal(got, data) {
		t.Fatal("SSE-C multipart differs")
	}
	_, err = en.minio.StatObject(ctx, "mpc", "obj", minio.StatObjectOptions{ServerSideEncryption: ssecKey(t, 8)})
	if _, s := minioCode(err); s != 403 {
		t.Fatalf("wrong key: %v", err)
	}
}

// An unversioned bucket lists each object as its one version, "null", as S3 does; mc
// (ls --versions) and aws (list-object-versions) page through it with key markers.
func TestListObjectVersions(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	en.mkBucket(t, "ver")
	all := []string{"a/1", "a/2", "b", "c d", "e"}
	for _, k := range all {
		en.put(t, "ver", k, []byte(k), minio.PutObjectOptions{})
	}
	var got []string
	var keyMarker, vidMarker *string
	for pages := 0; ; pages++ {
		out, err := en.aws.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String("ver"),
			MaxKeys: aws.Int32(2), KeyMarker: keyMarker, VersionIdMarker: vidMarker})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.DeleteMarkers) != 0 {
			t.Fatalf("delete markers in an unversioned bucket: %+v", out.DeleteMarkers)
		}
		for _, v := range out.Versions {
			k := aws.ToString(v.Key)
			if aws.ToString(v.VersionId) != "null" || !aws.ToBool(v.IsLatest) || aws.ToInt64(v.Size) != int64(len(k)) ||
				aws.ToString(v.ETag) != `"`+md5hex([]byte(k))+`"` {
				t.Errorf("version of %q: id %q latest %v size %d etag %s", k, aws.ToString(v.VersionId), aws.ToBool(v.IsLatest), aws.ToInt64(v.Size), aws.ToString(v.ETag))
			}
			got = append(got, k)
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		if pages > len(all) {
			t.Fatal("listing does not end")
		}
		keyMarker, vidMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	if !slices.Equal(got, all) {
		t.Fatalf("versions %q, want %q", got, all)
	}
	// minio-go, as mc ls --versions uses it, with a delimiter.
	var names []string
	for o := range en.minio.ListObjects(ctx, "ver", minio.ListObjectsOptions{WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		names = append(names, o.Key)
	}
	slices.Sort(names) // minio-go gives a page's common prefixes after its objects
	if want := []string{"a/", "b", "c d", "e"}; !slices.Equal(names, want) {
		t.Fatalf("minio-go versions listing %q, want %q", names, want)
	}
	if _, err := en.aws.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String("ver"),
		KeyMarker: aws.String("b"), VersionIdMarker: aws.String("3HL4kqtJlcpXroDTDmJ")}); err == nil {
		t.Fatal("a version-id marker that cannot exist was accepted")
	}
}

// TestMultipartKeptAlive runs the multipart test with every Complete answered the slow
// way: status and whitespace first, then the result or the error in the body. The AWS
// SDK must see the same outcomes, errors included, as when the answer comes at once.
func TestMultipartKeptAlive(t *testing.T) {
	after, every := completeKeepAliveAfter, completeKeepAliveEvery
	completeKeepAliveAfter, completeKeepAliveEvery = 0, time.Millisecond
	t.Cleanup(func() { completeKeepAliveAfter, completeKeepAliveEvery = after, every })
	TestMultipart(t)
	TestMultipartSSEC(t)
}
