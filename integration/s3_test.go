package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"golang.org/x/sys/unix"
)

// The S3 tests: real S3 clients (aws cli, s3cmd, MinIO's mc, curl, minio-go) against the S3
// API that ssefs serves on the same store as its FUSE mount, and the two views checked
// against each other. Every check compares contents (sha256 / bytes / exact listings), and
// a failing client's stdout and stderr are printed.

// awsLsRE parses a line of `aws s3 ls --recursive`: date, time, size, key (keys may hold spaces).
var awsLsRE = regexp.MustCompile(`^\S+ \S+\s+(\d+) (.+)$`)

// makeSyncTree writes 50 files (one empty, one above the 8 MiB multipart threshold, names
// with a space and UTF-8) into nested directories below dir, and returns their relative paths.
func makeSyncTree(t testing.TB, r *mrand.Rand, dir string) []string {
	t.Helper()
	subs := []string{".", "a", "a/b", "a/b/c", "d", "d/e f", "ünï"}
	var rels []string
	for i := 0; i < 50; i++ {
		var name string
		switch i {
		case 0:
			name = "empty.txt"
		case 1:
			name = "big 9MiB.bin"
		default:
			name = fmt.Sprintf("file-%02d.dat", i)
		}
		rel := filepath.Join(subs[i%len(subs)], name)
		n := r.IntN(300 << 10)
		switch i {
		case 0:
			n = 0
		case 1:
			n = 9<<20 + 17 // multipart through sync, parts of 8 MiB
		case 2:
			n = 1
		case 3:
			n = ChunkSize
		}
		p := filepath.Join(dir, rel)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755), "mkdir -p")
		writeFile(t, p, randBytes(r, n), 0o644)
		rels = append(rels, filepath.ToSlash(filepath.Clean(rel)))
	}
	sort.Strings(rels)
	return rels
}

// awsLs parses `aws s3 ls --recursive` output into key -> size.
func awsLs(t testing.TB, out string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		m := awsLsRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("aws s3 ls --recursive: unexpected line %q", l)
			continue
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		got[m[2]] = n
	}
	return got
}

func sizesString(m map[string]int64) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	return strings.Join(ks, "\n  ")
}

func strField(v any) string {
	s, _ := v.(string)
	return s
}

func numField(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// TestS3AwsCLI drives ssefs with the aws cli: mb; a 100 MiB multipart cp up and down (sha256
// and the multipart ETag checked, and the same file read through the mount); sync of a
// 50-file tree up, again (a no-op), down, compared with the source and with the mount's
// view; ls; head-object's SSE; put/get-bucket-encryption with aws:kms (new objects sealed
// with that key, also per the mount's ssefs.encryption); presigned GETs with curl, valid and
// expired; rm, rb.
func TestS3AwsCLI(t *testing.T) {
	requireClient(t, "aws cli", "/usr/bin/aws")
	cu := curlClient(t)
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	a := e.aws(t)
	r := rng(t)
	const bucket = "aws-cli-bucket"
	work := t.TempDir()

	a.ok("s3", "mb", "s3://"+bucket)
	if out := a.ok("s3", "ls"); !regexp.MustCompile(`(?m)^\S+ \S+ ` + bucket + `$`).MatchString(out) {
		t.Errorf("aws s3 ls does not list the new bucket %s:\n%s", bucket, out)
	}
	if fi, err := os.Stat(m.P(bucket)); err != nil || !fi.IsDir() {
		t.Errorf("bucket made by aws s3 mb: stat through the mount: %v, %v; want a directory", fi, err)
	}

	// 100 MiB: above the 8 MiB threshold, so aws uploads 13 parts of 8 MiB (the config pins
	// the part size) and downloads with ranged GETs.
	big := randBytes(r, 100<<20)
	bigSrc := filepath.Join(work, "big.bin")
	writeFile(t, bigSrc, big, 0o644)
	a.ok("s3", "cp", "--only-show-errors", bigSrc, "s3://"+bucket+"/dir/big.bin")
	head := jsonOut(t, "head-object", a.ok("s3api", "head-object", "--bucket", bucket, "--key", "dir/big.bin"))
	if got := numField(head["ContentLength"]); got != int64(len(big)) {
		t.Errorf("head-object dir/big.bin: ContentLength %d, want %d", got, len(big))
	}
	if got, want := strField(head["ETag"]), `"`+multipartETag(big, 8<<20)+`"`; got != want {
		t.Errorf("head-object dir/big.bin: ETag %s, want the multipart ETag %s", got, want)
	}
	if got := strField(head["ServerSideEncryption"]); got != "AES256" {
		t.Errorf("head-object dir/big.bin: ServerSideEncryption %q, want AES256 (SSE-S3 with the process default key); head:\n%v", got, head)
	}
	bigDst := filepath.Join(work, "big.down")
	a.ok("s3", "cp", "--only-show-errors", "s3://"+bucket+"/dir/big.bin", bigDst)
	if got := fileSHA(t, bigDst); got != sha(big) {
		t.Errorf("aws s3 cp down of the 100 MiB object: sha256 %s, want %s", got, sha(big))
	}
	if got := fileSHA(t, m.P(bucket, "dir", "big.bin")); got != sha(big) {
		t.Errorf("the 100 MiB object read through the mount: sha256 %s, want %s", got, sha(big))
	}
	assertSealed(t, m.P(bucket, "dir", "big.bin"), "SSE-S3", s3KeyName)

	// Server-side copy of the 100 MiB object: aws copies above its threshold with a
	// multipart upload of UploadPartCopy parts. Then mv (copy and delete), and a ranged get.
	a.ok("s3", "cp", "--only-show-errors", "s3://"+bucket+"/dir/big.bin", "s3://"+bucket+"/copies/big.bin")
	if got := fileSHA(t, m.P(bucket, "copies", "big.bin")); got != sha(big) {
		t.Errorf("server-side copy of the 100 MiB object, read through the mount: sha256 %s, want %s", got, sha(big))
	}
	a.ok("s3", "mv", "--only-show-errors", "s3://"+bucket+"/copies/big.bin", "s3://"+bucket+"/moved/big.bin")
	if got := fileSHA(t, m.P(bucket, "moved", "big.bin")); got != sha(big) {
		t.Errorf("aws s3 mv of the 100 MiB object, read through the mount: sha256 %s, want %s", got, sha(big))
	}
	if _, err := os.Stat(m.P(bucket, "copies")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after aws s3 mv the source's directory is still there: %v", err)
	}
	part := filepath.Join(work, "range.bin")
	a.ok("s3api", "get-object", "--bucket", bucket, "--key", "moved/big.bin", "--range", "bytes=9000000-9000099", part)
	if got := readFile(t, part); !bytes.Equal(got, big[9000000:9000100]) {
		t.Errorf("get-object --range bytes=9000000-9000099: %d bytes, not the object's", len(got))
	}
	a.ok("s3", "rm", "--only-show-errors", "s3://"+bucket+"/moved/big.bin")
	big = nil

	// sync a tree up, again (nothing to do), down; compare both with the source.
	treeSrc := filepath.Join(work, "tree")
	rels := makeSyncTree(t, r, treeSrc)
	a.ok("s3", "sync", "--only-show-errors", treeSrc, "s3://"+bucket+"/tree/")
	if out := a.ok("s3", "sync", treeSrc, "s3://"+bucket+"/tree/"); strings.TrimSpace(out) != "" {
		t.Errorf("a second aws s3 sync of an unchanged tree transferred something (size or LastModified not kept?):\n%s", out)
	}
	treeDst := filepath.Join(work, "tree.down")
	a.ok("s3", "sync", "--only-show-errors", "s3://"+bucket+"/tree/", treeDst)
	want := fileTree(t, treeSrc)
	compareFileTrees(t, "aws s3 sync down vs the source", fileTree(t, treeDst), want)
	compareFileTrees(t, "the synced tree through the mount vs the source", fileTree(t, m.P(bucket, "tree")), want)

	// ls --recursive lists exactly the objects, with their sizes; plain ls shows prefixes.
	wantLs := map[string]int64{"dir/big.bin": 100 << 20}
	for _, rel := range rels {
		fi, err := os.Stat(filepath.Join(treeSrc, rel))
		must(t, err, "stat source")
		wantLs["tree/"+rel] = fi.Size()
	}
	gotLs := awsLs(t, a.ok("s3", "ls", "--recursive", "s3://"+bucket))
	if sizesString(gotLs) != sizesString(wantLs) {
		t.Errorf("aws s3 ls --recursive:\n  %s\nwant:\n  %s", sizesString(gotLs), sizesString(wantLs))
	}
	if out := a.ok("s3", "ls", "s3://"+bucket+"/"); !strings.Contains(out, "PRE dir/") || !strings.Contains(out, "PRE tree/") {
		t.Errorf("aws s3 ls s3://%s/ does not show the prefixes dir/ and tree/:\n%s", bucket, out)
	}

	// Bucket default encryption: SSE-KMS with the KMS's key.
	a.ok("s3api", "put-bucket-encryption", "--bucket", bucket, "--server-side-encryption-configuration",
		`{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"`+s3KeyName+`"}}]}`)
	enc := jsonOut(t, "get-bucket-encryption", a.ok("s3api", "get-bucket-encryption", "--bucket", bucket))
	def := jsonPath(enc, "ServerSideEncryptionConfiguration", "Rules", 0, "ApplyServerSideEncryptionByDefault")
	if alg := strField(jsonPath(def, "SSEAlgorithm")); alg != "aws:kms" {
		t.Errorf("get-bucket-encryption: SSEAlgorithm %q, want aws:kms; got %v", alg, enc)
	}
	if kid := strField(jsonPath(def, "KMSMasterKeyID")); kid != s3KeyName && kid != "arn:aws:kms:"+s3KeyName {
		t.Errorf("get-bucket-encryption: KMSMasterKeyID %q, want %s (or arn:aws:kms:%s); got %v", kid, s3KeyName, s3KeyName, enc)
	}
	// A key the KMS does not have would make every later write of the bucket fail: refused.
	bad := a.fail("s3api", "put-bucket-encryption", "--bucket", bucket, "--server-side-encryption-configuration",
		`{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"no-such-key"}}]}`)
	t.Logf("put-bucket-encryption with an unknown key: %s", strings.TrimSpace(bad.Stderr))
	enc = jsonOut(t, "get-bucket-encryption", a.ok("s3api", "get-bucket-encryption", "--bucket", bucket))
	if kid := strField(jsonPath(enc, "ServerSideEncryptionConfiguration", "Rules", 0, "ApplyServerSideEncryptionByDefault", "KMSMasterKeyID")); !strings.HasSuffix(kid, s3KeyName) {
		t.Errorf("after a refused put-bucket-encryption the bucket's key is %q, want still %s", kid, s3KeyName)
	}
	small := randBytes(r, 70001)
	smallSrc := filepath.Join(work, "small.bin")
	writeFile(t, smallSrc, small, 0o644)
	a.ok("s3", "cp", "--only-show-errors", smallSrc, "s3://"+bucket+"/kms.bin")
	head = jsonOut(t, "head-object", a.ok("s3api", "head-object", "--bucket", bucket, "--key", "kms.bin"))
	if got := strField(head["ServerSideEncryption"]); got != "aws:kms" {
		t.Errorf("object written after put-bucket-encryption aws:kms: ServerSideEncryption %q, want aws:kms; head:\n%v", got, head)
	}
	if got := strField(head["SSEKMSKeyId"]); !strings.HasSuffix(got, s3KeyName) {
		t.Errorf("object written after put-bucket-encryption aws:kms: SSEKMSKeyId %q, want %s", got, s3KeyName)
	}
	if got := strField(head["ETag"]); got != `"`+md5Hex(small)+`"` {
		t.Errorf("single-part object: ETag %s, want the MD5 of the content %q", got, md5Hex(small))
	}
	assertSealed(t, m.P(bucket, "kms.bin"), "SSE-KMS", s3KeyName)
	assertContent(t, m.P(bucket, "kms.bin"), small)

	// Presigned GET with curl: the content; once expired, 403 AccessDenied.
	u := strings.TrimSpace(a.ok("s3", "presign", "s3://"+bucket+"/kms.bin", "--expires-in", "600"))
	code, body := curlGet(t, cu, u)
	if code != 200 {
		t.Errorf("curl of a presigned URL: HTTP %d, want 200; body:\n%s", code, body)
	} else {
		assertBytes(t, "curl of a presigned URL", body, small)
	}
	expiring := strings.TrimSpace(a.ok("s3", "presign", "s3://"+bucket+"/kms.bin", "--expires-in", "1"))
	// The URL is valid for one second from its X-Amz-Date: poll until the server says no
	// (bounded; a server that never expires it fails here).
	ok := waitCond(30*time.Second, func() bool {
		code, body = curlGet(t, cu, expiring)
		return code != 200
	})
	if !ok {
		t.Errorf("a presigned URL with --expires-in 1 still works after 30 s")
	} else if code != 403 || xmlCode(string(body)) != "AccessDenied" {
		t.Errorf("expired presigned URL: HTTP %d code %q, want 403 AccessDenied; body:\n%s", code, xmlCode(string(body)), body)
	}
	if bytes.Contains(body, small[:64]) {
		t.Errorf("the refusal of an expired presigned URL contains the object's content")
	}

	// rm, rb: a non-empty bucket is refused; removing every object lets rb succeed.
	if r := a.fail("s3", "rb", "s3://"+bucket); !strings.Contains(r.Stderr, "BucketNotEmpty") {
		t.Errorf("aws s3 rb of a non-empty bucket: want BucketNotEmpty:\n%s", r)
	}
	a.ok("s3", "rm", "s3://"+bucket+"/kms.bin")
	if r := a.fail("s3api", "head-object", "--bucket", bucket, "--key", "kms.bin"); !strings.Contains(r.Stderr, "404") {
		t.Errorf("head-object after aws s3 rm: want 404:\n%s", r)
	}
	_, err := os.Stat(m.P(bucket, "kms.bin"))
	wantErrno(t, err, "stat through the mount after aws s3 rm", syscall.ENOENT)
	a.ok("s3", "rm", "--recursive", "--only-show-errors", "s3://"+bucket+"/")
	if out := a.ok("s3", "ls", "--recursive", "s3://"+bucket); strings.TrimSpace(out) != "" {
		t.Errorf("aws s3 ls --recursive after rm --recursive lists:\n%s", out)
	}
	a.ok("s3", "rb", "s3://"+bucket)
	if out := a.ok("s3", "ls"); strings.Contains(out, bucket) {
		t.Errorf("aws s3 ls after rb still lists %s:\n%s", bucket, out)
	}
	_, err = os.Stat(m.P(bucket))
	wantErrno(t, err, "stat the removed bucket through the mount", syscall.ENOENT)
	m.Stop(t)
}

// TestS3Cmd drives ssefs with s3cmd: mb, put, get, ls, info (SSE, and the MD5 that s3cmd
// keeps in its x-amz-meta-s3cmd-attrs metadata), a 20 MiB multipart put in 5 MiB parts
// (multipart ETag), del, rb; contents also read through the mount.
func TestS3Cmd(t *testing.T) {
	requireClient(t, "s3cmd", "/usr/bin/s3cmd")
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	s := e.s3cmd(t)
	mc := e.minio(t)
	r := rng(t)
	const bucket = "s3cmd-bucket"
	work := t.TempDir()

	s.ok("mb", "s3://"+bucket)
	if out := s.ok("ls"); !strings.Contains(out, "s3://"+bucket) {
		t.Errorf("s3cmd ls does not list %s:\n%s", bucket, out)
	}
	data := randBytes(r, 300007)
	src := filepath.Join(work, "obj.bin")
	writeFile(t, src, data, 0o644)
	s.ok("put", src, "s3://"+bucket+"/sub/obj.bin")
	dst := filepath.Join(work, "obj.down")
	s.ok("get", "s3://"+bucket+"/sub/obj.bin", dst)
	assertContent(t, dst, data)
	assertContent(t, m.P(bucket, "sub", "obj.bin"), data)
	if out := s.ok("ls", "--recursive", "s3://"+bucket); !regexp.MustCompile(`(?m)\s300007\s+s3://` + bucket + `/sub/obj\.bin$`).MatchString(out) {
		t.Errorf("s3cmd ls --recursive does not show sub/obj.bin with size 300007:\n%s", out)
	}
	info := s.ok("info", "s3://"+bucket+"/sub/obj.bin")
	if !regexp.MustCompile(`(?m)^\s*SSE:\s+AES256\s*$`).MatchString(info) {
		t.Errorf("s3cmd info: want the line SSE: AES256:\n%s", info)
	}
	if !regexp.MustCompile(`(?m)^\s*MD5 sum:\s+` + md5Hex(data) + `\s*$`).MatchString(info) {
		t.Errorf("s3cmd info: want MD5 sum %s:\n%s", md5Hex(data), info)
	}
	if !regexp.MustCompile(`(?m)^\s*File size:\s+300007\s*$`).MatchString(info) {
		t.Errorf("s3cmd info: want File size 300007:\n%s", info)
	}

	// 20 MiB in 5 MiB parts: four parts, and the multipart ETag.
	big := randBytes(r, 20<<20)
	bigSrc := filepath.Join(work, "big.bin")
	writeFile(t, bigSrc, big, 0o644)
	s.ok("put", "--multipart-chunk-size-mb=5", bigSrc, "s3://"+bucket+"/big.bin")
	st, err := mc.StatObject(s3ctx(t), bucket, "big.bin", minio.StatObjectOptions{})
	if err != nil {
		t.Errorf("S3 HEAD big.bin: %v", s3ErrString(err))
	} else if want := multipartETag(big, 5<<20); st.ETag != want || st.Size != int64(len(big)) {
		t.Errorf("s3cmd multipart put: ETag %s size %d, want %s size %d", st.ETag, st.Size, want, len(big))
	}
	bigDst := filepath.Join(work, "big.down")
	s.ok("get", "s3://"+bucket+"/big.bin", bigDst)
	if got := fileSHA(t, bigDst); got != sha(big) {
		t.Errorf("s3cmd get of the multipart object: sha256 %s, want %s", got, sha(big))
	}
	if got := fileSHA(t, m.P(bucket, "big.bin")); got != sha(big) {
		t.Errorf("the multipart object through the mount: sha256 %s, want %s", got, sha(big))
	}
	if info := s.ok("info", "s3://"+bucket+"/big.bin"); !regexp.MustCompile(`(?m)^\s*MD5 sum:\s+` + md5Hex(big) + `\s*$`).MatchString(info) {
		t.Errorf("s3cmd info of the multipart object: want MD5 sum %s (from s3cmd-attrs):\n%s", md5Hex(big), info)
	}

	s.ok("del", "s3://"+bucket+"/sub/obj.bin")
	s.ok("del", "s3://"+bucket+"/big.bin")
	if out := s.ok("ls", "--recursive", "s3://"+bucket); strings.TrimSpace(out) != "" {
		t.Errorf("s3cmd ls after del lists:\n%s", out)
	}
	assertGoneAtOnce(t, "s3cmd del", m.P(bucket, "big.bin"))
	s.ok("rb", "s3://"+bucket)
	if out := s.ok("ls"); strings.Contains(out, bucket) {
		t.Errorf("s3cmd ls after rb still lists %s:\n%s", bucket, out)
	}
	_, err = os.Stat(m.P(bucket))
	wantErrno(t, err, "stat the bucket removed by s3cmd rb", syscall.ENOENT)
	m.Stop(t)
}

// TestS3MC drives ssefs with MinIO's mc: alias set, mb, cp (small and a 40 MiB multipart),
// cat, stat (Encryption: SSE-S3), ls, encrypt set sse-kms / encrypt info, stat of an object
// written after it (SSE-KMS with the key), rm, rb.
func TestS3MC(t *testing.T) {
	mcBin(t)
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	c := e.mc(t)
	r := rng(t)
	const bucket = "mc-bucket"
	target := "it/" + bucket
	work := t.TempDir()

	c.ok("mb", target)
	if out := c.ok("ls", "it"); !strings.Contains(out, bucket+"/") {
		t.Errorf("mc ls it does not list %s:\n%s", bucket, out)
	}
	data := randBytes(r, 123457)
	src := filepath.Join(work, "obj.bin")
	writeFile(t, src, data, 0o644)
	c.ok("cp", "--quiet", src, target+"/obj.bin")
	assertBytes(t, "mc cat obj.bin", []byte(c.ok("cat", target+"/obj.bin")), data)
	assertContent(t, m.P(bucket, "obj.bin"), data)

	big := randBytes(r, 40<<20+3)
	bigSrc := filepath.Join(work, "big.bin")
	writeFile(t, bigSrc, big, 0o644)
	c.ok("cp", "--quiet", bigSrc, target+"/nested/big.bin")
	if got := sha([]byte(c.ok("cat", target+"/nested/big.bin"))); got != sha(big) {
		t.Errorf("mc cat of the 40 MiB object: sha256 %s, want %s", got, sha(big))
	}
	if got := fileSHA(t, m.P(bucket, "nested", "big.bin")); got != sha(big) {
		t.Errorf("the 40 MiB object through the mount: sha256 %s, want %s", got, sha(big))
	}

	st := c.ok("stat", target+"/obj.bin")
	if !regexp.MustCompile(`(?m)^Encryption\s*:\s*SSE-S3\s*$`).MatchString(st) {
		t.Errorf("mc stat obj.bin: want Encryption: SSE-S3:\n%s", st)
	}
	js := jsonOut(t, "mc stat --json", c.ok("stat", "--json", target+"/obj.bin"))
	if size, etag := numField(js["size"]), strField(js["etag"]); size != int64(len(data)) || etag != md5Hex(data) {
		t.Errorf("mc stat --json obj.bin: size %d etag %q, want %d and %q; got %v", size, etag, len(data), md5Hex(data), js)
	}
	ls := c.ok("ls", "--recursive", target)
	for _, k := range []string{"obj.bin", "nested/big.bin"} {
		if !regexp.MustCompile(`(?m)\s` + regexp.QuoteMeta(k) + `$`).MatchString(ls) {
			t.Errorf("mc ls --recursive does not list %s:\n%s", k, ls)
		}
	}
	if n := len(strings.Split(strings.TrimSpace(ls), "\n")); n != 2 {
		t.Errorf("mc ls --recursive lists %d lines, want 2:\n%s", n, ls)
	}

	// Bucket encryption with the KMS's only key (the static master key's name).
	c.ok("encrypt", "set", "sse-kms", s3KeyName, target)
	info := c.ok("encrypt", "info", target)
	if !strings.Contains(info, "sse-kms") || !strings.Contains(info, s3KeyName) {
		t.Errorf("mc encrypt info: want sse-kms with KeyID %s:\n%s", s3KeyName, info)
	}
	kms := randBytes(r, 4097)
	kmsSrc := filepath.Join(work, "kms.bin")
	writeFile(t, kmsSrc, kms, 0o644)
	c.ok("cp", "--quiet", kmsSrc, target+"/kms.bin")
	if st := c.ok("stat", target+"/kms.bin"); !regexp.MustCompile(`(?m)^Encryption\s*:\s*SSE-KMS\b.*` + regexp.QuoteMeta(s3KeyName)).MatchString(st) {
		t.Errorf("mc stat of an object written after mc encrypt set sse-kms: want Encryption: SSE-KMS (%s):\n%s", s3KeyName, st)
	}
	assertSealed(t, m.P(bucket, "kms.bin"), "SSE-KMS", s3KeyName)
	assertContent(t, m.P(bucket, "kms.bin"), kms)

	c.ok("rm", target+"/obj.bin")
	c.ok("rm", "--recursive", "--force", target+"/nested")
	c.ok("rm", target+"/kms.bin")
	if out := c.ok("ls", "--recursive", target); strings.TrimSpace(out) != "" {
		t.Errorf("mc ls after rm lists:\n%s", out)
	}
	_, err := os.Stat(m.P(bucket, "obj.bin"))
	wantErrno(t, err, "stat through the mount after mc rm", syscall.ENOENT)
	c.ok("rb", target)
	if out := c.ok("ls", "it"); strings.Contains(out, bucket) {
		t.Errorf("mc ls after rb still lists %s:\n%s", bucket, out)
	}
	_, err = os.Stat(m.P(bucket))
	wantErrno(t, err, "stat the bucket removed by mc rb", syscall.ENOENT)
	m.Stop(t)
}

// TestS3CrossView checks that both views of one process see each other's changes at once
// (no polling: every read follows the write directly): buckets, writes, overwrites (also
// with the mount holding the old content in its page cache), deletes, user metadata as
// user.* xattrs, nested keys as directories.
func TestS3CrossView(t *testing.T) {
	requireClient(t, "aws cli", "/usr/bin/aws")
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	a := e.aws(t)
	c := e.minio(t)
	r := rng(t)
	const bucket = "xview"

	// Buckets: mkdir through the mount is a bucket for S3; mb by S3 is a directory at once,
	// and rb by S3 removes it at once (the root was listed before each, so a stale cache of
	// the kernel would show).
	listNames(t, m.Dir)
	must(t, os.Mkdir(m.P(bucket), 0o755), "mkdir a bucket through the mount")
	if out := a.ok("s3", "ls"); !regexp.MustCompile(`(?m) ` + bucket + `$`).MatchString(out) {
		t.Errorf("aws s3 ls does not list the bucket made by mkdir:\n%s", out)
	}
	_, err := os.Stat(m.P("by-s3"))
	wantErrno(t, err, "stat a bucket before it exists", syscall.ENOENT)
	must(t, c.MakeBucket(s3ctx(t), "by-s3", minio.MakeBucketOptions{Region: "us-east-1"}), "S3 MakeBucket by-s3")
	if fi, err := os.Stat(m.P("by-s3")); err != nil || !fi.IsDir() {
		t.Errorf("bucket made by S3: stat through the mount right after: %v, %v; want a directory", fi, err)
	}
	if got := listNames(t, m.Dir); strings.Join(got, ",") != "by-s3,"+bucket {
		t.Errorf("mount root lists %q after S3 MakeBucket, want [by-s3 %s]", got, bucket)
	}
	must(t, c.RemoveBucket(s3ctx(t), "by-s3"), "S3 RemoveBucket by-s3")
	_, err = os.Stat(m.P("by-s3"))
	wantErrno(t, err, "stat a bucket removed by S3", syscall.ENOENT)

	// S3 write -> mount read, also where the mount had just looked the name up and found
	// nothing (a negative entry the kernel may cache).
	_, err = os.Stat(m.P(bucket, "s3-written.bin"))
	wantErrno(t, err, "stat before the S3 write", syscall.ENOENT)
	v1 := randBytes(r, 3*ChunkSize+5)
	s3Put(t, c, bucket, "s3-written.bin", v1, minio.PutObjectOptions{})
	assertAtOnce(t, "S3 PUT of a name the mount had just found missing", m.P(bucket, "s3-written.bin"), v1)
	if fi, err := os.Stat(m.P(bucket, "s3-written.bin")); err != nil || fi.Size() != int64(len(v1)) {
		t.Errorf("stat of the S3-written file: %v, %v; want size %d", fi, err, len(v1))
	}
	awsData := randBytes(r, 54321)
	awsSrc := filepath.Join(t.TempDir(), "aws.bin")
	writeFile(t, awsSrc, awsData, 0o644)
	a.ok("s3", "cp", "--only-show-errors", awsSrc, "s3://"+bucket+"/aws-written.bin")
	assertAtOnce(t, "aws s3 cp of a new object", m.P(bucket, "aws-written.bin"), awsData)

	// Mount write -> S3 read right after close (os.WriteFile, and cp).
	fsData := randBytes(r, 2*ChunkSize+777)
	writeFile(t, m.P(bucket, "fs-written.bin"), fsData, 0o644)
	assertS3Content(t, c, bucket, "fs-written.bin", fsData)
	runTool(t, "/", "cp", awsSrc, m.P(bucket, "cp-written.bin"))
	assertS3Content(t, c, bucket, "cp-written.bin", awsData)
	if st, err := c.StatObject(s3ctx(t), bucket, "fs-written.bin", minio.StatObjectOptions{}); err != nil || st.Size != int64(len(fsData)) {
		t.Errorf("S3 HEAD of the file written through the mount: %+v, %v; want size %d", st, err, len(fsData))
	}

	// Overwrite by S3 while the mount has the file open and its old content in the page
	// cache: a fresh open+read sees the new content at once, same size (where the kernel
	// has no size change to notice) and larger.
	f, err := os.Open(m.P(bucket, "s3-written.bin"))
	must(t, err, "open")
	old := make([]byte, len(v1))
	if _, err := f.ReadAt(old, 0); err != nil {
		t.Fatalf("read the file before the overwrite: %v", err)
	}
	assertBytes(t, "read before the S3 overwrite", old, v1)
	v2 := randBytes(r, len(v1))
	s3Put(t, c, bucket, "s3-written.bin", v2, minio.PutObjectOptions{})
	assertAtOnce(t, "same-size S3 overwrite of a file open and cached in the mount", m.P(bucket, "s3-written.bin"), v2, v1)
	v3 := randBytes(r, len(v1)+ChunkSize+3)
	s3Put(t, c, bucket, "s3-written.bin", v3, minio.PutObjectOptions{})
	assertAtOnce(t, "larger S3 overwrite of a file open and cached in the mount", m.P(bucket, "s3-written.bin"), v3, v1, v2)
	if fi, err := os.Stat(m.P(bucket, "s3-written.bin")); err != nil || fi.Size() != int64(len(v3)) {
		t.Errorf("stat after the larger S3 overwrite: %v, %v; want size %d", fi, err, len(v3))
	}
	f.Close()
	// Smaller, by aws (a different client's PUT).
	a.ok("s3", "cp", "--only-show-errors", awsSrc, "s3://"+bucket+"/s3-written.bin")
	assertAtOnce(t, "smaller S3 overwrite by aws after close", m.P(bucket, "s3-written.bin"), awsData, v1, v2, v3)

	// Overwrite through the mount -> S3 GET sees it: a whole rewrite, then a pwrite into the
	// middle of an existing file (the write-back buffer must be flushed by close).
	v4 := randBytes(r, ChunkSize+1000)
	writeFile(t, m.P(bucket, "fs-written.bin"), v4, 0o644)
	assertS3Content(t, c, bucket, "fs-written.bin", v4)
	patch := []byte("patched in place through the mount")
	wf, err := os.OpenFile(m.P(bucket, "fs-written.bin"), os.O_WRONLY, 0)
	must(t, err, "open for writing")
	_, err = wf.WriteAt(patch, ChunkSize-10) // across the chunk boundary
	must(t, err, "pwrite")
	must(t, wf.Close(), "close")
	v5 := append([]byte{}, v4...)
	copy(v5[ChunkSize-10:], patch)
	assertS3Content(t, c, bucket, "fs-written.bin", v5)

	// Delete by S3 -> ENOENT through the mount at once (the name was just looked up).
	if _, err := os.Stat(m.P(bucket, "aws-written.bin")); err != nil {
		t.Fatalf("stat before the S3 delete: %v", err)
	}
	must(t, c.RemoveObject(s3ctx(t), bucket, "aws-written.bin", minio.RemoveObjectOptions{}), "S3 DELETE aws-written.bin")
	assertGoneAtOnce(t, "S3 delete", m.P(bucket, "aws-written.bin"))

	// Delete through the mount -> S3 NoSuchKey.
	must(t, os.Remove(m.P(bucket, "cp-written.bin")), "rm through the mount")
	_, err = c.StatObject(s3ctx(t), bucket, "cp-written.bin", minio.StatObjectOptions{})
	wantS3Error(t, err, "S3 HEAD after rm through the mount", 404, "NoSuchKey")
	_, err = s3Get(t, c, bucket, "cp-written.bin")
	wantS3Error(t, err, "S3 GET after rm through the mount", 404, "NoSuchKey")

	// User metadata <-> user.* xattrs, both ways.
	a.ok("s3", "cp", "--only-show-errors", "--metadata", "color=blue,shape=round", awsSrc, "s3://"+bucket+"/meta.bin")
	got := userXattrs(t, m.P(bucket, "meta.bin"))
	if got["user.color"] != "blue" || got["user.shape"] != "round" {
		t.Errorf("x-amz-meta-* through the mount: user xattrs %v, want user.color=blue user.shape=round", got)
	}
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(m.P(bucket, "meta.bin"), "user.color", buf); err != nil || string(buf[:n]) != "blue" {
		t.Errorf("getxattr user.color: %q, %v; want blue", buf[:max(n, 0)], err)
	}
	must(t, unix.Setxattr(m.P(bucket, "fs-written.bin"), "user.origin", []byte("mount"), 0), "setxattr user.origin")
	head := jsonOut(t, "head-object", a.ok("s3api", "head-object", "--bucket", bucket, "--key", "fs-written.bin"))
	if md := jsonPath(head, "Metadata", "origin"); md != "mount" {
		t.Errorf("user.origin set through the mount: head-object Metadata %v, want origin=mount", head["Metadata"])
	}

	// A nested key makes directories; a key ending in / makes an (empty) directory; an
	// empty directory made by mkdir shows to S3 as a prefix.
	leaf := []byte("a leaf three directories down")
	s3Put(t, c, bucket, "deep/er/still/leaf.txt", leaf, minio.PutObjectOptions{})
	for _, d := range []string{"deep", "deep/er", "deep/er/still"} {
		if fi, err := os.Stat(m.P(bucket, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s after PUT deep/er/still/leaf.txt: %v, %v; want a directory", d, fi, err)
		}
	}
	assertContent(t, m.P(bucket, "deep", "er", "still", "leaf.txt"), leaf)
	if got := listNames(t, m.P(bucket, "deep", "er")); strings.Join(got, ",") != "still" {
		t.Errorf("deep/er lists %q, want [still]", got)
	}
	s3Put(t, c, bucket, "marker-dir/", nil, minio.PutObjectOptions{})
	if fi, err := os.Stat(m.P(bucket, "marker-dir")); err != nil || !fi.IsDir() {
		t.Errorf("after PUT marker-dir/ (empty): %v, %v; want a directory", fi, err)
	}
	must(t, os.Mkdir(m.P(bucket, "made-by-mkdir"), 0o755), "mkdir in a bucket")
	var top []string
	for o := range c.ListObjects(s3ctx(t), bucket, minio.ListObjectsOptions{}) {
		if o.Err != nil {
			t.Fatalf("S3 list %s: %v", bucket, s3ErrString(o.Err))
		}
		top = append(top, o.Key)
	}
	sort.Strings(top)
	wantTop := []string{"deep/", "fs-written.bin", "made-by-mkdir/", "marker-dir/", "meta.bin", "s3-written.bin"}
	if strings.Join(top, ",") != strings.Join(wantTop, ",") {
		t.Errorf("S3 list of %s with delimiter /: %q, want %q", bucket, top, wantTop)
	}
	if got := listNames(t, m.P(bucket)); strings.Join(got, ",") != "deep,fs-written.bin,made-by-mkdir,marker-dir,meta.bin,s3-written.bin" {
		t.Errorf("the bucket through the mount lists %q", got)
	}
	m.Stop(t)
}

// TestS3Serve: `ssefs serve` (no mount; credentials by --root-user/--root-password-file)
// takes objects from the aws cli and stops with exit 0 on SIGTERM; a mount of the same data
// dir (credentials by MINIO_ROOT_USER/MINIO_ROOT_PASSWORD) shows them as files, and its own
// S3 API serves them too.
func TestS3Serve(t *testing.T) {
	requireClient(t, "aws cli", "/usr/bin/aws")
	creds := newS3Creds()
	cfg := newConfig(t)
	cfg.Bucket = ""
	pwFile := filepath.Join(t.TempDir(), "root-password")
	writeFile(t, pwFile, []byte(creds.Password+"\n"), 0o600)
	srv := StartServe(t, cfg, creds, "--root-user", creds.User, "--root-password-file", pwFile)
	a := srv.S3.aws(t)
	r := rng(t)
	const bucket = "served"
	data := randBytes(r, 2*ChunkSize+12345)
	src := filepath.Join(t.TempDir(), "obj.bin")
	writeFile(t, src, data, 0o644)
	a.ok("s3", "mb", "s3://"+bucket)
	a.ok("s3", "cp", "--only-show-errors", src, "s3://"+bucket+"/docs/obj.bin")
	dst := filepath.Join(t.TempDir(), "obj.down")
	a.ok("s3", "cp", "--only-show-errors", "s3://"+bucket+"/docs/obj.bin", dst)
	assertContent(t, dst, data)
	if got := awsLs(t, a.ok("s3", "ls", "--recursive", "s3://"+bucket)); sizesString(got) != fmt.Sprintf("docs/obj.bin=%d", len(data)) {
		t.Errorf("aws s3 ls --recursive on ssefs serve:\n  %s", sizesString(got))
	}
	srv.Stop(t)

	mcfg := cfg
	mcfg.Args = []string{"--s3-address", "127.0.0.1:0"}
	mcfg.Env = append(append([]string{}, cfg.Env...), "MINIO_ROOT_USER="+creds.User, "MINIO_ROOT_PASSWORD="+creds.Password)
	m, e := startS3Mount(t, mcfg, creds)
	if got := listNames(t, m.Dir); strings.Join(got, ",") != bucket {
		t.Errorf("mount root after serve lists %q, want [%s]", got, bucket)
	}
	assertContent(t, m.P(bucket, "docs", "obj.bin"), data)
	assertSealed(t, m.P(bucket, "docs", "obj.bin"), "SSE-S3", s3KeyName)
	assertS3Content(t, e.minio(t), bucket, "docs/obj.bin", data)
	m.Stop(t)
}

// TestS3BadKeys: keys that cannot be paths (an object a and an object a/b in either order,
// .. and . segments, empty segments, NUL) are refused with an S3 client error (4xx) and
// nothing is stored, whichever call (PUT, multipart, copy) brings them.
func TestS3BadKeys(t *testing.T) {
	requireClient(t, "aws cli", "/usr/bin/aws")
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	a := e.aws(t)
	c := e.minio(t)
	r := rng(t)
	const bucket = "bad-keys"
	must(t, c.MakeBucket(s3ctx(t), bucket, minio.MakeBucketOptions{Region: "us-east-1"}), "S3 MakeBucket")
	work := t.TempDir()
	small := randBytes(r, 1000)
	smallSrc := filepath.Join(work, "small")
	writeFile(t, smallSrc, small, 0o644)
	put := func(key string) clientResult {
		return a.run("s3api", "put-object", "--bucket", bucket, "--key", key, "--body", smallSrc)
	}

	if r := put("a"); r.Err != nil {
		t.Fatalf("put-object a:\n%s", r)
	}
	if r := put("c/d"); r.Err != nil {
		t.Fatalf("put-object c/d:\n%s", r)
	}
	for _, key := range []string{"a/b", "a/b/c", "c", "e/../f", "..", "g//h", "/lead", "p/./q", "trail/.."} {
		if r := put(key); r.Err == nil {
			t.Errorf("put-object of the key %q, which cannot be a path, succeeded:\n%s", key, r)
		} else if !strings.Contains(r.Stderr, "An error occurred (") {
			t.Errorf("put-object %q: want an S3 error response, got:\n%s", key, r)
		}
	}
	// The status is a client error, not a 5xx.
	_, err := c.PutObject(s3ctx(t), bucket, "a/b", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{})
	if er := minio.ToErrorResponse(err); err == nil || er.StatusCode < 400 || er.StatusCode >= 500 || er.Code == "" {
		t.Errorf("S3 PUT a/b under the object a: %v; want a 4xx S3 error", s3ErrString(errOrNil(err)))
	}
	_, err = c.PutObject(s3ctx(t), bucket, "nul\x00key", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{})
	if er := minio.ToErrorResponse(err); err == nil || er.StatusCode < 400 || er.StatusCode >= 500 {
		t.Errorf("S3 PUT of a key with NUL: %v; want a 4xx S3 error", s3ErrString(errOrNil(err)))
	}
	// Multipart (9 MiB > the 8 MiB threshold) and server-side copy to a bad key.
	big := filepath.Join(work, "big")
	writeFile(t, big, randBytes(r, 9<<20), 0o644)
	a.fail("s3", "cp", "--only-show-errors", big, "s3://"+bucket+"/a/multipart")
	a.fail("s3", "cp", "--only-show-errors", "s3://"+bucket+"/c/d", "s3://"+bucket+"/a/copy")

	if got := s3Keys(t, c, bucket); strings.Join(got, ",") != "a,c/d" {
		t.Errorf("after the refused keys the bucket lists %q, want exactly [a c/d]", got)
	}
	out := a.ok("s3api", "list-multipart-uploads", "--bucket", bucket)
	if strings.Contains(out, "UploadId") {
		t.Logf("note: a refused multipart upload is still listed (aws cli aborts it on failure, so this may be aws's leftover):\n%s", out)
	}
	if got := listNames(t, m.P(bucket)); strings.Join(got, ",") != "a,c" {
		t.Errorf("the bucket through the mount lists %q, want [a c]", got)
	}
	assertContent(t, m.P(bucket, "a"), small)
	assertContent(t, m.P(bucket, "c", "d"), small)
	assertS3Content(t, c, bucket, "a", small)
	m.Stop(t)
}

func errOrNil(err error) error {
	if err == nil {
		return errors.New("no error")
	}
	return err
}

// TestS3Auth: wrong credentials are 403 SignatureDoesNotMatch / InvalidAccessKeyId (aws cli
// and minio-go) and store nothing; no anonymous access (curl and raw HTTP without a
// signature: 403 AccessDenied XML, nothing read, written or deleted); a tampered presigned
// URL or one used with another method is refused.
func TestS3Auth(t *testing.T) {
	requireClient(t, "aws cli", "/usr/bin/aws")
	cu := curlClient(t)
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	a := e.aws(t)
	c := e.minio(t)
	r := rng(t)
	const bucket = "auth"
	must(t, c.MakeBucket(s3ctx(t), bucket, minio.MakeBucketOptions{Region: "us-east-1"}), "S3 MakeBucket")
	secret := randBytes(r, 4096)
	s3Put(t, c, bucket, "secret.bin", secret, minio.PutObjectOptions{})
	src := filepath.Join(t.TempDir(), "x")
	writeFile(t, src, []byte("written with bad credentials"), 0o644)

	wrongSecret := a.withCreds(creds.User, creds.Password+"x")
	if r := wrongSecret.fail("s3api", "list-buckets"); !strings.Contains(r.Stderr, "SignatureDoesNotMatch") {
		t.Errorf("aws with a wrong secret: want SignatureDoesNotMatch:\n%s", r)
	}
	wrongSecret.fail("s3", "cp", src, "s3://"+bucket+"/by-wrong-secret")
	unknownUser := a.withCreds("no-such-user", creds.Password)
	if r := unknownUser.fail("s3api", "list-buckets"); !strings.Contains(r.Stderr, "InvalidAccessKeyId") {
		t.Errorf("aws with an unknown access key: want InvalidAccessKeyId:\n%s", r)
	}
	unknownUser.fail("s3", "cp", src, "s3://"+bucket+"/by-unknown-user")
	_, err := e.minioWith(t, creds.User, "wrong-password").ListBuckets(s3ctx(t))
	wantS3Error(t, err, "minio-go ListBuckets with a wrong secret", 403, "SignatureDoesNotMatch")
	_, err = s3Get(t, e.minioWith(t, "no-such-user", creds.Password), bucket, "secret.bin")
	wantS3Error(t, err, "minio-go GET with an unknown access key", 403, "InvalidAccessKeyId")

	// Anonymous: no signature at all.
	code, body := curlGet(t, cu, e.URL+"/"+bucket+"/secret.bin")
	if code != 403 || xmlCode(string(body)) != "AccessDenied" {
		t.Errorf("anonymous curl GET of an object: HTTP %d code %q, want 403 AccessDenied; body:\n%s", code, xmlCode(string(body)), body)
	}
	if bytes.Contains(body, secret[:32]) {
		t.Errorf("anonymous GET returned the object's content")
	}
	for _, rq := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/" + bucket}, {"HEAD", "/" + bucket + "/secret.bin"},
		{"PUT", "/" + bucket + "/anonymous.bin"}, {"DELETE", "/" + bucket + "/secret.bin"},
		{"PUT", "/anonymous-bucket"}, {"DELETE", "/" + bucket},
	} {
		st, b := rawRequest(t, rq.method, e.URL+rq.path, []byte("anonymous body"))
		if st != 403 || (rq.method != "HEAD" && xmlCode(b) != "AccessDenied") {
			t.Errorf("anonymous %s %s: HTTP %d code %q, want 403 AccessDenied; body:\n%s", rq.method, rq.path, st, xmlCode(b), b)
		}
	}

	// A presigned GET with one signature character changed, or used for a PUT.
	u := strings.TrimSpace(a.ok("s3", "presign", "s3://"+bucket+"/secret.bin", "--expires-in", "600"))
	i := strings.Index(u, "X-Amz-Signature=")
	if i < 0 {
		t.Fatalf("presigned URL without X-Amz-Signature: %s", u)
	}
	i += len("X-Amz-Signature=")
	flip := byte('0')
	if u[i] == '0' {
		flip = '1'
	}
	tampered := u[:i] + string(flip) + u[i+1:]
	code, body = curlGet(t, cu, tampered)
	if code != 403 || xmlCode(string(body)) != "SignatureDoesNotMatch" {
		t.Errorf("tampered presigned URL: HTTP %d code %q, want 403 SignatureDoesNotMatch; body:\n%s", code, xmlCode(string(body)), body)
	}
	code, body = curlGet(t, cu, u, "-X", "PUT", "--data-binary", "overwrite by a GET URL")
	if code != 403 {
		t.Errorf("a presigned GET URL used for PUT: HTTP %d, want 403; body:\n%s", code, body)
	}
	code, body = curlGet(t, cu, u)
	if code != 200 || !bytes.Equal(body, secret) {
		t.Errorf("the untampered presigned URL: HTTP %d, %d bytes; want 200 with the object", code, len(body))
	}

	// Nothing the refused requests tried is there; the object is unchanged.
	if got := s3Keys(t, c, bucket); strings.Join(got, ",") != "secret.bin" {
		t.Errorf("after the refused requests the bucket lists %q, want [secret.bin]", got)
	}
	if got := listNames(t, m.Dir); strings.Join(got, ",") != bucket {
		t.Errorf("after the refused requests the mount root lists %q, want [%s]", got, bucket)
	}
	assertContent(t, m.P(bucket, "secret.bin"), secret)
	m.Stop(t)
}

// TestS3ServeTLS serves S3 over https (--s3-cert, --s3-key) and uses SSE-C through it:
// the customer key is required on every read, a wrong one is refused, and plain http to
// the TLS port gets no S3 answer.
func TestS3ServeTLS(t *testing.T) {
	creds := newS3Creds()
	cfg := newConfig(t)
	cfg.Bucket = ""
	cfg.Env = append(cfg.Env, "SSEFS_ROOT_USER="+creds.User, "SSEFS_ROOT_PASSWORD="+creds.Password)
	certFile, keyFile, pool := selfSignedLoopbackCert(t)
	srv := StartServe(t, cfg, creds, "--s3-cert", certFile, "--s3-key", keyFile)
	if !strings.HasPrefix(srv.S3.URL, "https://") {
		t.Fatalf("listening line names %s, want https:// with --s3-cert", srv.S3.URL)
	}
	c, err := minio.New(srv.S3.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(creds.User, creds.Password, ""),
		Secure:       true,
		Transport:    &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := s3ctx(t)
	must(t, c.MakeBucket(ctx, "secure", minio.MakeBucketOptions{}), "make bucket over https")
	data := randBytes(rng(t), ChunkSize+77)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	ssec, err := encrypt.NewSSEC(key)
	must(t, err, "SSE-C key")
	if _, err := c.PutObject(ctx, "secure", "c.bin", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ServerSideEncryption: ssec}); err != nil {
		t.Fatalf("SSE-C put over https: %v", err)
	}
	obj, err := c.GetObject(ctx, "secure", "c.bin", minio.GetObjectOptions{ServerSideEncryption: ssec})
	must(t, err, "SSE-C get")
	got, err := io.ReadAll(obj)
	obj.Close()
	must(t, err, "SSE-C read")
	assertBytes(t, "SSE-C object over https", got, data)
	info, err := c.StatObject(ctx, "secure", "c.bin", minio.StatObjectOptions{ServerSideEncryption: ssec})
	must(t, err, "SSE-C stat")
	if info.Metadata.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != "AES256" {
		t.Errorf("SSE-C head-object headers: %v", info.Metadata)
	}
	_, err = c.StatObject(ctx, "secure", "c.bin", minio.StatObjectOptions{})
	if minio.ToErrorResponse(err).StatusCode != 400 {
		t.Errorf("stat of an SSE-C object without its key: %v, want 400", err)
	}
	other := make([]byte, 32)
	other[0] = 1
	wrong, _ := encrypt.NewSSEC(other)
	_, err = c.StatObject(ctx, "secure", "c.bin", minio.StatObjectOptions{ServerSideEncryption: wrong})
	if minio.ToErrorResponse(err).StatusCode != 403 {
		t.Errorf("stat of an SSE-C object with a wrong key: %v, want 403", err)
	}
	if code, body := rawRequest(t, "GET", "http://"+srv.S3.Host+"/secure/c.bin", nil); code == 200 || bytes.Contains([]byte(body), data[:16]) {
		t.Errorf("plain http to the TLS port: %d %q", code, body)
	}
	srv.Stop(t)
}

// selfSignedLoopbackCert writes a certificate for 127.0.0.1 and its key (0600) and returns
// their paths and a pool that trusts the certificate.
func selfSignedLoopbackCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err, "generate key")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ssefs test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	must(t, err, "create certificate")
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	must(t, err, "marshal key")
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, err := x509.ParseCertificate(der)
	must(t, err, "parse certificate")
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestS3Rclone: rclone copies a tree up (with a file above its multipart cutoff),
// checks it against the source by size and hash, lists it, syncs a change, and copies it
// back down; the mount sees the same tree.
func TestS3Rclone(t *testing.T) {
	requireClient(t, "rclone", "/usr/bin/rclone")
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	rc := e.rclone(t)
	r := rng(t)
	src := t.TempDir()
	files := map[string][]byte{
		"a.txt":           []byte("alpha\n"),
		"empty":           {},
		"dir/b.bin":       randBytes(r, ChunkSize+3),
		"dir/sub/c.bin":   randBytes(r, 70000),
		"dir/sub/big.bin": randBytes(r, 12<<20), // above --s3-upload-cutoff below: multipart
	}
	writeFiles(t, src, files)
	rc.ok("mkdir", "ssefs:rcl")
	rc.ok("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", src, "ssefs:rcl/tree")
	// rclone check compares sizes and MD5s (from ETags, or the md5chksum metadata rclone
	// stores with multipart uploads): a byte wrong anywhere fails it.
	rc.ok("check", src, "ssefs:rcl/tree")
	got := strings.Fields(rc.ok("lsf", "-R", "--files-only", "ssefs:rcl/tree"))
	sort.Strings(got)
	if want := sortedNames(files); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rclone lsf -R: %q, want %q", got, want)
	}
	assertFiles(t, m.P("rcl", "tree"), files, "rclone copy, through the mount")

	files["a.txt"] = []byte("alpha, changed by sync\n")
	delete(files, "dir/b.bin")
	writeFile(t, filepath.Join(src, "a.txt"), files["a.txt"], 0o644)
	must(t, os.Remove(filepath.Join(src, "dir", "b.bin")), "remove from the source")
	rc.ok("sync", src, "ssefs:rcl/tree")
	rc.ok("check", src, "ssefs:rcl/tree")
	assertFiles(t, m.P("rcl", "tree"), files, "rclone sync, through the mount")
	if _, err := os.Stat(m.P("rcl", "tree", "dir", "b.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file rclone sync deleted: stat through the mount: %v", err)
	}

	down := t.TempDir()
	rc.ok("copy", "ssefs:rcl/tree", down)
	assertFiles(t, down, files, "rclone copy back down")
	m.Stop(t)
}
