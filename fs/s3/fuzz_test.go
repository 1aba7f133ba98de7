package s3

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/s3/sigv4"
	"github.com/ssefs/ssefs/keys"
)

// Parsers get arbitrary bytes: they must never panic, and every failure must be an
// S3 error a client can be given (MalformedXML or InvalidArgument, status 400).

func checkParseErr(t *testing.T, err error, codes ...string) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 400 && ae.Status != 416 {
		t.Fatalf("error %v is not a client error", err)
	}
	for _, c := range codes {
		if ae.Code == c {
			return
		}
	}
	t.Fatalf("code %s, want one of %v", ae.Code, codes)
}

func FuzzParseCompleteRequest(f *testing.F) {
	f.Add([]byte(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>"a54357aff0632cce46d942af68356b38"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part>`))
	f.Add([]byte(strings.Repeat("<a>", 100)))
	f.Fuzz(func(t *testing.T, data []byte) {
		parts, err := parseCompleteRequest(data)
		checkParseErr(t, err, "MalformedXML")
		if err == nil && (len(parts) == 0 || len(parts) > fs.MaxPartNumber) {
			t.Fatalf("%d parts accepted", len(parts))
		}
	})
}

func FuzzParseDeleteRequest(f *testing.F) {
	f.Add([]byte(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a</Key></Object><Object><Key>b c</Key><VersionId>null</VersionId></Object><Quiet>true</Quiet></Delete>`))
	f.Add([]byte(`<Delete></Delete>`))
	f.Add([]byte(`<Delete><Object><Key>&amp;&#0;</Key></Object></Delete>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><Delete><Object><Key>&a;</Key></Object></Delete>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseDeleteRequest(data)
		checkParseErr(t, err, "MalformedXML")
		if err == nil && (len(d.Objects) == 0 || len(d.Objects) > maxDeleteKeys) {
			t.Fatalf("%d objects accepted", len(d.Objects))
		}
	})
}

func FuzzParseCreateBucketConfiguration(f *testing.F) {
	f.Add([]byte(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>`))
	f.Add([]byte(`<CreateBucketConfiguration/>`))
	f.Add([]byte(`<Other><LocationConstraint>x</LocationConstraint></Other>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseCreateBucketConfiguration(data)
		checkParseErr(t, err, "MalformedXML")
	})
}

func FuzzParseSSEConfiguration(f *testing.F) {
	f.Add([]byte(`<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>my-key</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`))
	f.Add([]byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`))
	f.Add([]byte(`<ServerSideEncryptionConfiguration><Rule/><Rule/></ServerSideEncryptionConfiguration>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parseSSEConfiguration(data)
		checkParseErr(t, err, "MalformedXML", "InvalidArgument")
		if err == nil && strings.HasPrefix(key, kmsARNPrefix) {
			t.Fatalf("key %q keeps the ARN prefix", key)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-1", "bytes=5-", "bytes=1-2,3-4", "bytes=9-3", "bytes= 1-2", "bytes=-0", "items=1-2", "bytes=99999999999999999999-"} {
		f.Add(s, int64(10))
	}
	f.Add("bytes=0-", int64(0))
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		start, length, ok, err := parseRange(v, size)
		checkParseErr(t, err, "InvalidRange")
		if ok && (start < 0 || length <= 0 || start+length > size) {
			t.Fatalf("range %q of %d: start %d length %d", v, size, start, length)
		}
		if !ok && (start != 0 || length != 0) {
			t.Fatalf("whole object with start %d length %d", start, length)
		}
	})
}

func FuzzParseCopySource(f *testing.F) {
	for _, s := range []string{"/bucket/key", "bucket/a%2Fb%3Fc?versionId=null", "bucket/", "/", "b/k?versionId=%zz", "b/%E4%B8%AD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		b, k, _, err := parseCopySource(v)
		checkParseErr(t, err, "InvalidArgument")
		if err == nil && (b == "" || k == "" || strings.Contains(b, "/")) {
			t.Fatalf("%q -> bucket %q key %q", v, b, k)
		}
	})
}

func FuzzParseCopySourceRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=5-4", "bytes=-4", "bytes=1-", "bytes=+1-2", "0-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		first, last, err := parseCopySourceRange(v)
		checkParseErr(t, err, "InvalidArgument")
		if err == nil && (first < 0 || last < first) {
			t.Fatalf("%q -> %d-%d", v, first, last)
		}
	})
}

func TestParseRange(t *testing.T) {
	for _, c := range []struct {
		v             string
		size          int64
		start, length int64
		ok            bool
		err           bool
	}{
		{"", 10, 0, 0, false, false},
		{"bytes=0-0", 10, 0, 1, true, false},
		{"bytes=2-5", 10, 2, 4, true, false},
		{"bytes=2-", 10, 2, 8, true, false},
		{"bytes=-3", 10, 7, 3, true, false},
		{"bytes=-30", 10, 0, 10, true, false},
		{"bytes=8-100", 10, 8, 2, true, false},
		{"bytes=10-", 10, 0, 0, false, true},
		{"bytes=-0", 10, 0, 0, false, true},
		{"bytes=0-", 0, 0, 0, false, true},
		{"bytes=5-2", 10, 0, 0, false, false},
		{"bytes=1-2,4-5", 10, 0, 0, false, false},
		{"bytes=a-b", 10, 0, 0, false, false},
		{"lines=1-2", 10, 0, 0, false, false},
	} {
		start, length, ok, err := parseRange(c.v, c.size)
		if start != c.start || length != c.length || ok != c.ok || (err != nil) != c.err {
			t.Errorf("%q/%d: %d+%d %v %v", c.v, c.size, start, length, ok, err)
		}
	}
}

func TestCheckConditions(t *testing.T) {
	mod := time.Date(2024, 5, 1, 12, 0, 0, 500, time.UTC)
	before, after := mod.Add(-time.Minute).Format(http.TimeFormat), mod.Add(time.Minute).Format(http.TimeFormat)
	same := mod.Format(http.TimeFormat)
	for _, c := range []struct {
		h    http.Header
		read bool
		want error
	}{
		{http.Header{"If-Match": {`"e1"`}}, true, nil},
		{http.Header{"If-Match": {`"x", "e1"`}}, true, nil},
		{http.Header{"If-Match": {`*`}}, true, nil},
		{http.Header{"If-Match": {`"x"`}}, true, errPreconditionFailed},
		{http.Header{"If-None-Match": {`"e1"`}}, true, errNotModified},
		{http.Header{"If-None-Match": {`"e1"`}}, false, errPreconditionFailed},
		{http.Header{"If-Modified-Since": {same}}, true, errNotModified},
		{http.Header{"If-Modified-Since": {before}}, true, nil},
		{http.Header{"If-Unmodified-Since": {before}}, true, errPreconditionFailed},
		{http.Header{"If-Unmodified-Since": {same}}, true, nil},
		{http.Header{"If-Match": {`"e1"`}, "If-Unmodified-Since": {before}}, true, nil},
		{http.Header{"If-None-Match": {`"x"`}, "If-Modified-Since": {after}}, true, nil},
		{http.Header{"If-Modified-Since": {"garbage"}}, true, nil},
	} {
		if got := checkConditions(c.h, "", "e1", mod, c.read); got != c.want {
			t.Errorf("%v read=%v: %v, want %v", c.h, c.read, got, c.want)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("op: %w", err) }
	both := func(a, b error) error { return fmt.Errorf("x: %w: %w", a, b) }
	for _, c := range []struct {
		err    error
		key    string
		code   string
		status int
	}{
		{wrap(both(fs.ErrNotExist, fs.ErrNoSuchBucket)), "k", "NoSuchBucket", 404},
		{wrap(fs.ErrNotExist), "k", "NoSuchKey", 404},
		{wrap(fs.ErrNotExist), "", "NoSuchBucket", 404},
		{wrap(both(fs.ErrNotExist, fs.ErrNoSuchUpload)), "k", "NoSuchUpload", 404},
		{wrap(fs.ErrNotEmpty), "", "BucketNotEmpty", 409},
		{wrap(fs.ErrExist), "", "BucketAlreadyOwnedByYou", 409},
		{wrap(both(fs.ErrInvalid, fs.ErrInvalidPart)), "k", "InvalidPart", 400},
		{wrap(both(fs.ErrInvalid, fs.ErrInvalidPartOrder)), "k", "InvalidPartOrder", 400},
		{wrap(both(fs.ErrInvalid, fs.ErrEntityTooSmall)), "k", "EntityTooSmall", 400},
		{wrap(both(fs.ErrInvalid, fs.ErrNotSSEC)), "k", "InvalidRequest", 400},
		{wrap(both(fs.ErrAccess, keys.ErrClientKeyRequired)), "k", "InvalidRequest", 400},
		{wrap(both(fs.ErrAccess, keys.ErrClientKeyMismatch)), "k", "AccessDenied", 403},
		{wrap(both(fs.ErrAccess, keys.ErrKeyDisabled)), "k", "AccessDenied", 403},
		{wrap(both(fs.ErrAccess, keys.ErrForbidden)), "k", "AccessDenied", 403},
		{wrap(fs.ErrNotDir), "k", "XMinioParentIsObject", 400},
		{wrap(fs.ErrIsDir), "k", "XMinioObjectExistsAsDirectory", 409},
		{wrap(fs.ErrNameTooLong), strings.Repeat("k", 1025), "KeyTooLongError", 400},
		{wrap(fs.ErrNameTooLong), "k", "InvalidArgument", 400},
		{wrap(fs.ErrInvalid), "k", "InvalidArgument", 400},
		{wrap(fs.ErrCorrupt), "k", "InternalError", 500},
		{wrap(fs.ErrUnavailable), "k", "ServiceUnavailable", 503},
		{wrap(fs.ErrNoSpace), "k", "XMinioStorageFull", 507},
		{wrap(fs.ErrTooBig), "k", "MetadataTooLarge", 400},
		{wrap(&sigv4.Error{Code: "BadDigest", Message: "m", Status: 400}), "k", "BadDigest", 400},
		{errors.New("surprise"), "k", "InternalError", 500},
	} {
		ae := toAPIError(c.err, c.key)
		if ae.Code != c.code || ae.Status != c.status {
			t.Errorf("%v: %s/%d, want %s/%d", c.err, ae.Code, ae.Status, c.code, c.status)
		}
	}
}

func TestDecodeXMLBounds(t *testing.T) {
	deep := strings.Repeat("<a>", maxXMLDepth+1) + strings.Repeat("</a>", maxXMLDepth+1)
	var v struct{}
	if err := decodeXML([]byte(deep), &v); err == nil {
		t.Fatal("deep document accepted")
	}
	wide := "<Delete>" + strings.Repeat("<x/>", maxXMLTokens) + "</Delete>"
	if _, err := parseDeleteRequest([]byte(wide)); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("wide document: %v", err)
	}
	if _, err := readXMLBody(strings.NewReader(strings.Repeat(" ", 11)), 10); err == nil {
		t.Fatal("oversized body accepted")
	}
}
