package s3

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/sse"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/s3/sigv4"
	"github.com/ssefs/ssefs/keys"
)

func TestBucketLifecycle(t *testing.T) {
	en := newEnv(t, false)
	ctx := context.Background()
	mc := en.minio

	en.mkBucket(t, "alpha")
	en.mkBucket(t, "beta")
	wantMinioErr(t, mc.MakeBucket(ctx, "alpha", minio.MakeBucketOptions{}), "BucketAlreadyOwnedByYou", 409)
	// minio-go validates names itself: use the raw request.
	if resp := en.do(t, "PUT", "/Bad_Name", nil, nil); resp.StatusCode != 400 || readError(t, resp).Code != "InvalidBucketName" {
		t.Fatalf("bad bucket name: %d", resp.StatusCode)
	}

	bs, err := mc.ListBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].Name != "alpha" || bs[1].Name != "beta" || bs[0].CreationDate.IsZero() {
		t.Fatalf("buckets %+v", bs)
	}
	if ok, err := mc.BucketExists(ctx, "alpha"); err != nil || !ok {
		t.Fatalf("alpha exists: %v %v", ok, err)
	}
	if ok, err := mc.BucketExists(ctx, "gamma"); err != nil || ok {
		t.Fatalf("gamma exists: %v %v", ok, err)
	}
	loc, err := en.aws.GetBucketLocation(ctx, &awss3.GetBucketLocationInput{Bucket: aws.String("alpha")})
	if err != nil || loc.LocationConstraint != "" {
		t.Fatalf("location %+v %v", loc, err)
	}

	// What clients ask at startup answers without failing, or with the "not set" codes.
	if v, err := mc.GetBucketVersioning(ctx, "alpha"); err != nil || v.Status != "" {
		t.Fatalf("versioning %+v %v", v, err)
	}
	if p, err := mc.GetBucketPolicy(ctx, "alpha"); err != nil || p != "" {
		t.Fatalf("policy %q %v", p, err) // minio-go turns NoSuchBucketPolicy into ""
	}
	_, err = mc.GetBucketTagging(ctx, "alpha")
	wantMinioErr(t, err, "NoSuchTagSet", 404)
	_, _, _, _, err = mc.GetObjectLockConfig(ctx, "alpha")
	wantMinioErr(t, err, "ObjectLockConfigurationNotFoundError", 404)
	_, err = mc.GetBucketLifecycle(ctx, "alpha")
	wantMinioErr(t, err, "NoSuchLifecycleConfiguration", 404)
	acl, err := en.aws.GetBucketAcl(ctx, &awss3.GetBucketAclInput{Bucket: aws.String("alpha")})
	if err != nil || len(acl.Grants) != 1 || acl.Grants[0].Permission != types.PermissionFullControl || aws.ToString(acl.Grants[0].Grantee.ID) != ownerID {
		t.Fatalf("acl %+v %v", acl, err)
	}
	_, err = en.aws.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: aws.String("alpha"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	if awsCode(err) != "NotImplemented" {
		t.Fatalf("put versioning: %v", err)
	}
	_, err = mc.GetBucketTagging(ctx, "gamma")
	wantMinioErr(t, err, "NoSuchBucket", 404)

	// Location constraints: ours is accepted, another is not.
	if _, err := en.aws.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("delta"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: "eu-west-1"}}); awsCode(err) != "InvalidLocationConstraint" {
		t.Fatalf("foreign location: %v", err)
	}
	if ok, _ := mc.BucketExists(ctx, "delta"); ok {
		t.Fatal("delta was created")
	}
	resp := en.do(t, "PUT", "/delta", nil, []byte(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>`))
	if resp.StatusCode != 200 {
		t.Fatalf("create with our location: %d", resp.StatusCode)
	}

	// Not empty: an object, then an upload in progress.
	en.put(t, "alpha", "x", []byte("x"), minio.PutObjectOptions{})
	wantMinioErr(t, mc.RemoveBucket(ctx, "alpha"), "BucketNotEmpty", 409)
	if err := mc.RemoveObject(ctx, "alpha", "x", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	up, err := en.aws.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("alpha"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	wantMinioErr(t, mc.RemoveBucket(ctx, "alpha"), "BucketNotEmpty", 409)
	if _, err := en.aws.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String("alpha"), Key: aws.String("big"), UploadId: up.UploadId}); err != nil {
		t.Fatal(err)
	}
	if err := mc.RemoveBucket(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	wantMinioErr(t, mc.RemoveBucket(ctx, "alpha"), "NoSuchBucket", 404)
	if ok, _ := en.e.BucketExists(ctx, "alpha"); ok {
		t.Fatal("alpha still exists in the engine")
	}
}

func TestBucketEncryption(t *testing.T) {
	en := newEnv(t, false)
	ctx := context.Background()
	mc := en.minio
	en.mkBucket(t, "enc")

	_, err := mc.GetBucketEncryption(ctx, "enc")
	wantMinioErr(t, err, "ServerSideEncryptionConfigurationNotFoundError", 404)

	// What `mc encrypt set sse-kms KEY alias/enc` sends.
	if err := mc.SetBucketEncryption(ctx, "enc", sse.NewConfigurationSSEKMS(testKMSKey)); err != nil {
		t.Fatal(err)
	}
	if k, err := en.e.BucketEncryption(ctx, "enc"); err != nil || k != testKMSKey {
		t.Fatalf("engine default key %q %v", k, err)
	}
	cfg, err := mc.GetBucketEncryption(ctx, "enc")
	if err != nil || len(cfg.Rules) != 1 || cfg.Rules[0].Apply.SSEAlgorithm != "aws:kms" || cfg.Rules[0].Apply.KmsMasterKeyID != "arn:aws:kms:"+testKMSKey {
		t.Fatalf("config %+v %v", cfg, err)
	}
	// New objects without headers use the bucket key.
	en.put(t, "enc", "o", []byte("data"), minio.PutObjectOptions{})
	st, err := mc.StatObject(ctx, "enc", "o", minio.StatObjectOptions{})
	if err != nil || st.Metadata.Get("X-Amz-Server-Side-Encryption") != "aws:kms" ||
		st.Metadata.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != "arn:aws:kms:"+testKMSKey {
		t.Fatalf("stat %+v %v", st.Metadata, err)
	}
	if info, _ := en.e.StatObject(ctx, "enc", "o", fs.GetOptions{}); info.SSEType != keys.SSEKMS || info.KeyName != testKMSKey {
		t.Fatalf("engine sees %s %q", info.SSEType, info.KeyName)
	}

	// What `aws s3api put-bucket-encryption` sends, with an unknown key: refused, nothing changes.
	_, err = en.aws.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("enc"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String("no-such-key")},
			BucketKeyEnabled:                   aws.Bool(true),
		}}}})
	if awsCode(err) != "AccessDenied" {
		t.Fatalf("unknown key: %v", err)
	}
	if k, _ := en.e.BucketEncryption(ctx, "enc"); k != testKMSKey {
		t.Fatalf("default key changed to %q", k)
	}
	// AES256 means SSE-S3 under the process key: the bucket key is cleared.
	_, err = en.aws.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("enc"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := en.e.BucketEncryption(ctx, "enc"); k != "" {
		t.Fatalf("default key %q after AES256", k)
	}
	if err := mc.SetBucketEncryption(ctx, "enc", sse.NewConfigurationSSEKMS(testKMSKey)); err != nil {
		t.Fatal(err)
	}
	if err := mc.RemoveBucketEncryption(ctx, "enc"); err != nil {
		t.Fatal(err)
	}
	_, err = mc.GetBucketEncryption(ctx, "enc")
	wantMinioErr(t, err, "ServerSideEncryptionConfigurationNotFoundError", 404)
	_, err = mc.GetBucketEncryption(ctx, "nope")
	wantMinioErr(t, err, "NoSuchBucket", 404)

	resp := en.do(t, "PUT", "/enc?encryption", nil, []byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms:dsse</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`))
	if resp.StatusCode != 400 || readError(t, resp).Code != "MalformedXML" {
		t.Fatalf("dsse: %d", resp.StatusCode)
	}
}

func TestAuthErrors(t *testing.T) {
	en := newEnv(t, true)
	ctx := context.Background()
	en.mkBucket(t, "auth")

	bad := awsClient(en, "wrong-secret")
	_, err := bad.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("auth"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if awsCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	if keys := en.keysOf(t, "auth"); len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}

	// Anonymous: no signature at all.
	resp, err := en.srv.Client().Get(en.srv.URL + "/auth/k")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("anonymous: %d", resp.StatusCode)
	}
	e := readError(t, resp)
	if e.Code != "AccessDenied" || e.Resource != "/auth/k" || e.Key != "k" {
		t.Fatalf("anonymous: %+v", e)
	}

	// A signature that does not match, checked on the raw response.
	req, _ := http.NewRequest("GET", en.srv.URL+"/auth", nil)
	now := time.Now().UTC()
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAccess+"/"+now.Format("20060102")+"/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("0", 64))
	resp2, err := en.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != 403 || resp2.Header.Get("X-Amz-Id-2") == "" {
		t.Fatalf("status %d", resp2.StatusCode)
	}
	if e := readError(t, resp2); e.Code != "SignatureDoesNotMatch" {
		t.Fatalf("bad signature: %+v", e)
	}

	// HEAD errors have no body but the status and the request ID.
	hresp := en.do(t, "HEAD", "/auth/missing", nil, nil)
	b, _ := io.ReadAll(hresp.Body)
	if hresp.StatusCode != 404 || len(b) != 0 || hresp.Header.Get("X-Amz-Request-Id") == "" {
		t.Fatalf("HEAD missing: %d %q", hresp.StatusCode, b)
	}

	// Conditional writes are refused, not ignored.
	resp4 := en.do(t, "PUT", "/auth/cond", http.Header{"If-None-Match": {"*"}}, []byte("x"))
	if resp4.StatusCode != 501 || readError(t, resp4).Code != "NotImplemented" {
		t.Fatalf("conditional put: %d", resp4.StatusCode)
	}
	if keys := en.keysOf(t, "auth"); len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}

	// Presigned URLs work without any other credential.
	en.put(t, "auth", "shared", []byte("presigned"), minio.PutObjectOptions{})
	u, err := en.minio.PresignedGetObject(ctx, "auth", "shared", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	presp, err := en.srv.Client().Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(presp.Body)
	presp.Body.Close()
	if presp.StatusCode != 200 || string(pb) != "presigned" {
		t.Fatalf("presigned GET: %d %q", presp.StatusCode, pb)
	}

	// Unknown calls are NotImplemented, with the XML.
	resp3 := en.do(t, "PUT", "/auth?policy", nil, []byte(`{}`))
	if resp3.StatusCode != 501 || readError(t, resp3).Code != "NotImplemented" {
		t.Fatalf("put policy: %d", resp3.StatusCode)
	}
}

// With a configured domain, BUCKET.DOMAIN addresses BUCKET (virtual-host style, what the
// AWS SDKs use unless told to use paths); other hosts stay path-style.
func TestVirtualHostStyle(t *testing.T) {
	en := newEnv(t, false)
	en.server.domains = []string{"s3.test"}
	ctx := context.Background()
	addr := strings.TrimPrefix(en.srv.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	// Every *.s3.test name resolves to the test server.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	vhost := awss3.New(awss3.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(testAccess, testSecret, ""),
		BaseEndpoint:     aws.String("http://s3.test:" + port),
		UsePathStyle:     false,
		HTTPClient:       &http.Client{Transport: &http.Transport{DialContext: dial}},
		RetryMaxAttempts: 1,
	})
	if _, err := vhost.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("vhost.bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := vhost.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("vhost.bkt"), Key: aws.String("a/b c"),
		Body: strings.NewReader("virtual")}); err != nil {
		t.Fatal(err)
	}
	// The same object, path-style.
	if got := en.get(t, "vhost.bkt", "a/b c", minio.GetObjectOptions{}); string(got) != "virtual" {
		t.Fatalf("path-style read of a virtual-host write: %q", got)
	}
	out, err := vhost.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("vhost.bkt"), Key: aws.String("a/b c")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "virtual" {
		t.Fatalf("virtual-host read: %q", body)
	}
	list, err := vhost.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("vhost.bkt")})
	if err != nil || len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "a/b c" {
		t.Fatalf("virtual-host list: %+v %v", list, err)
	}
	if _, err := New(en.e, Config{Credentials: sigv4.Static(), Domains: []string{"http://x"}}); err == nil {
		t.Fatal("a domain with a scheme was accepted")
	}
}
