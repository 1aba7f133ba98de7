package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Hostile input to the S3 API (issue #6): each request gets the right S3 error, nothing
// is stored, no byte lands outside the bucket, and the server stays up, answers a normal
// PUT/GET afterwards and exits 0 on SIGTERM with no DATA RACE. The requests are written
// byte by byte on raw TCP connections (signed with aws-sdk-go-v2's signer where a
// signature is needed), since no real client can be made to send most of them.

const hostileRegion = "us-east-1"

// hostile sends hand-made requests to one S3 endpoint.
type hostile struct {
	t testing.TB
	e *S3Endpoint
}

// rawReq is one hand-made request.
type rawReq struct {
	method string
	target string      // request target as sent: path (escaped as wanted) and query
	header http.Header // extra headers (x-amz-* ones are signed)
	body   []byte      // sent after the headers
	// bodyR, when set, is sent instead of body (for bodies too large to hold).
	bodyR io.Reader
	// contentLength is the Content-Length sent (and signed): -1 means len(body), -2 none.
	contentLength int64
	payload       string    // x-amz-content-sha256; "" = the hex SHA-256 of body
	secret        string    // "" = the right secret key
	when          time.Time // signing time; zero = now
	unsigned      bool      // send no signature at all
	closeWrite    bool      // half-close after the body: the client has nothing more
}

// rawResp is what came back on the connection.
type rawResp struct {
	status int
	header http.Header
	body   []byte
	err    error // reading the response failed (the connection was cut)
}

func (r rawResp) code() string { return xmlCode(string(r.body)) }

func (r rawResp) String() string {
	if r.err != nil {
		return "no response: " + r.err.Error()
	}
	return fmt.Sprintf("HTTP %d %s", r.status, tail(string(r.body), 600))
}

// uriEncode is SigV4's URI encoding: every byte but A-Z a-z 0-9 - . _ ~ (and '/').
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// signedHeader signs rq as the aws-sdk-go-v2 signer does and returns every header to send
// (Host apart) and the request's signature (the seed of a chunked body).
func (h *hostile) signedHeader(rq *rawReq, contentLength int64) (http.Header, string) {
	h.t.Helper()
	hdr := http.Header{}
	for k, v := range rq.header {
		hdr[k] = append([]string(nil), v...)
	}
	if rq.unsigned {
		return hdr, ""
	}
	pathPart, query, _ := strings.Cut(rq.target, "?")
	decoded, err := url.PathUnescape(pathPart)
	if err != nil {
		decoded = pathPart
	}
	payload := rq.payload
	if payload == "" {
		payload = sha(rq.body)
	}
	hdr.Set("X-Amz-Content-Sha256", payload)
	when := rq.when
	if when.IsZero() {
		when = time.Now()
	}
	// Opaque carries the canonical URI exactly (the server's first candidate: the decoded
	// path, URI-encoded once), so the signer neither cleans nor re-escapes it.
	u := &url.URL{Scheme: "http", Host: h.e.Host, Opaque: "//" + h.e.Host + uriEncode(decoded), RawQuery: query}
	req := &http.Request{Method: rq.method, URL: u, Host: h.e.Host, Header: hdr, ContentLength: max(contentLength, 0)}
	secret := rq.secret
	if secret == "" {
		secret = h.e.Creds.Password
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	err = signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: h.e.Creds.User, SecretAccessKey: secret},
		req, payload, "s3", hostileRegion, when)
	if err != nil {
		h.t.Fatalf("signing %s %s: %v", rq.method, rq.target, err)
	}
	_, sig, _ := strings.Cut(hdr.Get("Authorization"), "Signature=")
	return hdr, sig
}

// head is the request line and header block of rq.
func (h *hostile) head(rq *rawReq, hdr http.Header, contentLength int64) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", rq.method, rq.target, h.e.Host)
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func (rq *rawReq) length() int64 {
	switch rq.contentLength {
	case -1:
		return int64(len(rq.body))
	case -2:
		return -1
	}
	return rq.contentLength
}

// do signs and sends rq on a fresh connection and reads the answer.
func (h *hostile) do(rq rawReq) rawResp {
	h.t.Helper()
	n := rq.length()
	hdr, _ := h.signedHeader(&rq, n)
	return h.send(h.head(&rq, hdr, n), rq.bodyOrReader(), rq.closeWrite)
}

func (rq *rawReq) bodyOrReader() io.Reader {
	if rq.bodyR != nil {
		return rq.bodyR
	}
	return bytes.NewReader(rq.body)
}

// send writes head and body on a fresh connection (the body from a goroutine, so that an
// answer that comes before the body is all sent is read at once, as a real client would)
// and reads one response.
func (h *hostile) send(head []byte, body io.Reader, closeWrite bool) rawResp {
	h.t.Helper()
	conn, err := net.DialTimeout("tcp", h.e.Host, 10*time.Second)
	if err != nil {
		h.t.Fatalf("dial %s: %v", h.e.Host, err)
	}
	defer conn.Close()
	return exchange(conn, head, body, closeWrite, time.Minute)
}

func exchange(conn net.Conn, head []byte, body io.Reader, closeWrite bool, timeout time.Duration) rawResp {
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := conn.Write(head); err != nil {
			return
		}
		if body != nil {
			if _, err := io.Copy(conn, body); err != nil {
				return
			}
		}
		if closeWrite {
			conn.(*net.TCPConn).CloseWrite()
		}
	}()
	conn.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		<-wrote
		return rawResp{err: err}
	}
	b, err := io.ReadAll(resp.Body)
	conn.Close() // ends the writer too, if the server answered before taking the body
	<-wrote
	return rawResp{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// want fails unless r is an S3 error with status and one of codes.
func (h *hostile) want(what string, r rawResp, status int, codes ...string) {
	h.t.Helper()
	if r.err != nil || r.status != status {
		h.t.Errorf("%s: %s; want HTTP %d %v", what, r, status, codes)
		return
	}
	for _, c := range codes {
		if r.code() == c {
			return
		}
	}
	h.t.Errorf("%s: %s; want code %v", what, r, codes)
}

// chunk is one aws-chunked chunk to send.
type chunk struct {
	data     []byte
	declared int  // size written in the chunk header; -1 = len(data)
	badSig   bool // sign other bytes than the data
}

// chunked signs a STREAMING-AWS4-HMAC-SHA256-PAYLOAD request whose body is chunks (and
// the final empty chunk) and sends it. decoded is x-amz-decoded-content-length.
func (h *hostile) chunked(target string, chunks []chunk, decoded int64) rawResp {
	h.t.Helper()
	when := time.Now()
	encode := func(sig func([]byte) string) []byte {
		var b bytes.Buffer
		for _, c := range append(chunks, chunk{declared: -1}) {
			n := c.declared
			if n < 0 {
				n = len(c.data)
			}
			signed := c.data
			if c.badSig {
				signed = append([]byte("not the data"), c.data...)
			}
			fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", n, sig(signed))
			b.Write(c.data)
			b.WriteString("\r\n")
		}
		return b.Bytes()
	}
	// The encoded length does not depend on the signatures (64 hex digits each).
	length := len(encode(func([]byte) string { return strings.Repeat("0", 64) }))
	rq := rawReq{method: "PUT", target: target, payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", when: when,
		header: http.Header{"X-Amz-Decoded-Content-Length": {strconv.FormatInt(decoded, 10)}, "Content-Encoding": {"aws-chunked"}}}
	hdr, seed := h.signedHeader(&rq, int64(length))
	seedBytes, err := hex.DecodeString(seed)
	if err != nil {
		h.t.Fatalf("seed signature %q: %v", seed, err)
	}
	ss := v4.NewStreamSigner(aws.Credentials{AccessKeyID: h.e.Creds.User, SecretAccessKey: h.e.Creds.Password}, "s3", hostileRegion, seedBytes)
	body := encode(func(data []byte) string {
		// An S3 chunk signature is an event-stream signature with no event headers.
		s, err := ss.GetSignature(context.Background(), nil, data, when)
		if err != nil {
			h.t.Fatalf("chunk signature: %v", err)
		}
		return hex.EncodeToString(s)
	})
	return h.send(h.head(&rq, hdr, int64(len(body))), bytes.NewReader(body), false)
}

// presign returns a presigned GET URL for target, signed at when, valid for expires
// seconds (the X-Amz-Expires value, as given).
func (h *hostile) presign(target string, when time.Time, expires string) string {
	h.t.Helper()
	u := &url.URL{Scheme: "http", Host: h.e.Host, Opaque: "//" + h.e.Host + target, RawQuery: "X-Amz-Expires=" + expires}
	req := &http.Request{Method: "GET", URL: u, Host: h.e.Host, Header: http.Header{}}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signed, _, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: h.e.Creds.User, SecretAccessKey: h.e.Creds.Password},
		req, "UNSIGNED-PAYLOAD", "s3", hostileRegion, when)
	if err != nil {
		h.t.Fatalf("presign %s: %v", target, err)
	}
	return signed
}

// getURL GETs a (presigned) URL exactly as given.
func (h *hostile) getURL(raw string) rawResp {
	h.t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		h.t.Fatalf("presigned URL %q: %v", raw, err)
	}
	rq := rawReq{method: "GET", target: u.RequestURI(), unsigned: true}
	return h.send(h.head(&rq, nil, -1), nil, false)
}

// keys lists a bucket through a raw signed ListObjectsV2.
func (h *hostile) keys(bucket string) string {
	h.t.Helper()
	r := h.do(rawReq{method: "GET", target: "/" + bucket + "?list-type=2", contentLength: -2})
	if r.err != nil || r.status != 200 {
		h.t.Fatalf("listing %s: %s", bucket, r)
	}
	var keys []string
	rest := string(r.body)
	for {
		_, after, ok := strings.Cut(rest, "<Key>")
		if !ok {
			break
		}
		k, after2, _ := strings.Cut(after, "</Key>")
		keys = append(keys, k)
		rest = after2
	}
	return strings.Join(keys, ",")
}

// alive fails unless a normal signed PUT and GET of a fresh object work.
func (h *hostile) alive(what, bucket string) {
	h.t.Helper()
	data := make([]byte, 1000)
	rand.Read(data)
	key := "alive-" + hex.EncodeToString(data[:4])
	if r := h.do(rawReq{method: "PUT", target: "/" + bucket + "/" + key, body: data, contentLength: -1}); r.err != nil || r.status != 200 {
		h.t.Fatalf("%s: the server does not take a normal PUT: %s", what, r)
	}
	r := h.do(rawReq{method: "GET", target: "/" + bucket + "/" + key, contentLength: -2})
	if r.err != nil || r.status != 200 || !bytes.Equal(r.body, data) {
		h.t.Fatalf("%s: a normal GET: %s (%d bytes, want %d)", what, r, len(r.body), len(data))
	}
	if r := h.do(rawReq{method: "DELETE", target: "/" + bucket + "/" + key, contentLength: -2}); r.status != 204 {
		h.t.Fatalf("%s: a normal DELETE: %s", what, r)
	}
}

// TestHostileS3 runs the hostile requests against `ssefs mount --s3-address`, so that what
// is (not) stored is checked through the mount as well as through S3.
func TestHostileS3(t *testing.T) {
	creds := newS3Creds()
	cfg := s3Config(t, creds)
	m, e := startS3Mount(t, cfg, creds)
	h := &hostile{t: t, e: e}
	const bucket = "hostile"
	if r := h.do(rawReq{method: "PUT", target: "/" + bucket, contentLength: -1}); r.status != 200 {
		t.Fatalf("creating the bucket: %s", r)
	}
	keep := []byte("kept through everything")
	if r := h.do(rawReq{method: "PUT", target: "/" + bucket + "/keep.bin", body: keep, contentLength: -1}); r.status != 200 {
		t.Fatalf("PUT keep.bin: %s", r)
	}
	wantStored := func(what string) {
		t.Helper()
		if got := h.keys(bucket); got != "keep.bin" {
			t.Errorf("%s: the bucket lists %q, want only keep.bin", what, got)
		}
		if got := strings.Join(listNames(t, m.P(bucket)), ","); got != "keep.bin" {
			t.Errorf("%s: the bucket directory through the mount holds %q, want only keep.bin", what, got)
		}
		if got := strings.Join(listNames(t, m.Dir), ","); got != bucket {
			t.Errorf("%s: the mount root holds %q, want only %s", what, got, bucket)
		}
	}

	t.Run("signatures", func(t *testing.T) {
		h := &hostile{t: t, e: e}
		put := "/" + bucket + "/signed-wrong"
		h.want("a PUT signed with a wrong secret", h.do(rawReq{method: "PUT", target: put, body: []byte("x"), contentLength: -1, secret: creds.Password + "x"}),
			403, "SignatureDoesNotMatch")
		for _, off := range []time.Duration{-20 * time.Minute, 20 * time.Minute} {
			h.want(fmt.Sprintf("a PUT with X-Amz-Date %v off", off), h.do(rawReq{method: "PUT", target: put, body: []byte("x"), contentLength: -1, when: time.Now().Add(off)}),
				403, "RequestTimeTooSkewed")
		}
		// A presigned URL made 10 minutes ago for 5 minutes, replayed now.
		old := h.presign("/"+bucket+"/keep.bin", time.Now().Add(-10*time.Minute), "300")
		r := h.getURL(old)
		h.want("a presigned URL replayed past its expiry", r, 403, "AccessDenied")
		if !strings.Contains(string(r.body), "Request has expired") {
			t.Errorf("the expired presigned URL's message does not say it expired: %s", r)
		}
		h.want("a presigned URL with X-Amz-Expires of 7 days and a second", h.getURL(h.presign("/"+bucket+"/keep.bin", time.Now(), "604801")),
			400, "AuthorizationQueryParametersError")
		// The same, valid: the refusals above are about time, not the signing.
		if r := h.getURL(h.presign("/"+bucket+"/keep.bin", time.Now(), "300")); r.status != 200 || !bytes.Equal(r.body, keep) {
			t.Errorf("a fresh presigned URL: %s, want 200 with the object", r)
		}
		wantStored("after the bad signatures")
	})

	t.Run("chunked", func(t *testing.T) {
		h := &hostile{t: t, e: e}
		r := rng(t)
		a, b := randBytes(r, 70000), randBytes(r, 3000)
		target := "/" + bucket + "/chunked"
		n := int64(len(a) + len(b))
		// The well-formed upload is stored: the forms below differ from it in one thing.
		if r := h.chunked(target+"-ok", []chunk{{data: a, declared: -1}, {data: b, declared: -1}}, n); r.status != 200 {
			t.Fatalf("a well-formed chunked upload: %s", r)
		}
		if got := readFile(t, m.P(bucket, "chunked-ok")); !bytes.Equal(got, append(append([]byte{}, a...), b...)) {
			t.Errorf("the well-formed chunked upload reads back as %d bytes, want %d", len(got), n)
		}
		if r := h.do(rawReq{method: "DELETE", target: target + "-ok", contentLength: -2}); r.status != 204 {
			t.Fatalf("DELETE chunked-ok: %s", r)
		}
		h.want("a chunk with a wrong signature", h.chunked(target, []chunk{{data: a, declared: -1}, {data: b, declared: -1, badSig: true}}, n),
			403, "SignatureDoesNotMatch")
		h.want("a chunk declared longer than its data", h.chunked(target, []chunk{{data: a, declared: len(a) + 500}, {data: b, declared: -1}}, n),
			400, "IncompleteBody")
		h.want("a chunk declared shorter than its data", h.chunked(target, []chunk{{data: a, declared: len(a) - 500}, {data: b, declared: -1}}, n),
			400, "IncompleteBody")
		h.want("x-amz-decoded-content-length larger than the chunks", h.chunked(target, []chunk{{data: a, declared: -1}, {data: b, declared: -1}}, n+1),
			400, "IncompleteBody")
		h.want("x-amz-decoded-content-length smaller than the chunks", h.chunked(target, []chunk{{data: a, declared: -1}, {data: b, declared: -1}}, n-1),
			400, "IncompleteBody")

		// Plain bodies: longer than Content-Length (the signed SHA-256 covers what was
		// sent) and shorter (the client half-closes before Content-Length bytes came).
		body := randBytes(r, 5000)
		h.want("a plain body longer than Content-Length", h.do(rawReq{method: "PUT", target: target, body: body, contentLength: 4000, payload: sha(body)}),
			400, "XAmzContentSHA256Mismatch")
		h.want("a plain body shorter than Content-Length", h.do(rawReq{method: "PUT", target: target, body: body, contentLength: 6000, payload: "UNSIGNED-PAYLOAD", closeWrite: true}),
			400, "IncompleteBody")
		wantStored("after the bad bodies")
	})

	t.Run("xml", func(t *testing.T) {
		h := &hostile{t: t, e: e}
		del := "/" + bucket + "?delete"
		post := func(what, target string, body []byte) rawResp {
			start := time.Now()
			r := h.do(rawReq{method: "POST", target: target, body: body, contentLength: -1})
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("%s took %s to be refused", what, d)
			}
			return r
		}
		// 100,000 keys (keep.bin among them: nothing may be deleted).
		var b bytes.Buffer
		b.WriteString("<Delete>")
		for i := range 100_000 {
			if i == 50_000 {
				b.WriteString("<Object><Key>keep.bin</Key></Object>")
			}
			fmt.Fprintf(&b, "<Object><Key>k%d</Key></Object>", i)
		}
		b.WriteString("</Delete>")
		h.want("a multi-delete of 100,000 keys", post("100,000 keys", del, b.Bytes()), 400, "MalformedXML", "MaxMessageLengthExceeded")
		// The same count in the shortest form, which fits under the body limit.
		short := "<Delete>" + strings.Repeat("<Object/>", 100_000) + "</Delete>"
		h.want("a multi-delete of 100,000 empty Objects", post("100,000 empty objects", del, []byte(short)), 400, "MalformedXML")
		deep := "<Delete>" + strings.Repeat("<a>", 100_000) + strings.Repeat("</a>", 100_000) + "</Delete>"
		h.want("a multi-delete nested 100,000 deep", post("deep nesting", del, []byte(deep)), 400, "MalformedXML")
		h.want("a multi-delete with invalid UTF-8", post("invalid UTF-8", del, []byte("<Delete><Object><Key>keep\xff\xfe.bin</Key></Object></Delete>")),
			400, "MalformedXML")
		h.want("a multi-delete with invalid UTF-8 in a name", post("invalid UTF-8 name", del, []byte("<Delete><Obj\xffect><Key>keep.bin</Key></Obj\xffect></Delete>")),
			400, "MalformedXML")

		// A 100 MiB CompleteMultipartUpload, streamed (UNSIGNED-PAYLOAD: nobody hashes 100 MiB
		// to be refused).
		up := h.do(rawReq{method: "POST", target: "/" + bucket + "/mpu?uploads", contentLength: -1})
		_, rest, _ := strings.Cut(string(up.body), "<UploadId>")
		id, _, _ := strings.Cut(rest, "</UploadId>")
		if up.status != 200 || id == "" {
			t.Fatalf("CreateMultipartUpload: %s", up)
		}
		part := []byte("<Part><PartNumber>1</PartNumber><ETag>\"0123456789abcdef0123456789abcdef\"</ETag></Part>")
		const size = 100 << 20
		big := io.MultiReader(strings.NewReader("<CompleteMultipartUpload>"), io.LimitReader(repeatReader(part), int64(size-len("<CompleteMultipartUpload>"))))
		start := time.Now()
		r := h.do(rawReq{method: "POST", target: "/" + bucket + "/mpu?uploadId=" + url.QueryEscape(id), bodyR: big, contentLength: size, payload: "UNSIGNED-PAYLOAD"})
		h.want("a 100 MiB CompleteMultipartUpload", r, 400, "MalformedXML", "MaxMessageLengthExceeded")
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("the 100 MiB CompleteMultipartUpload took %s to be refused", d)
		}
		if r := h.do(rawReq{method: "DELETE", target: "/" + bucket + "/mpu?uploadId=" + url.QueryEscape(id), contentLength: -2}); r.status != 204 {
			t.Errorf("aborting the upload: %s", r)
		}
		wantStored("after the bad XML")
		if got := readFile(t, m.P(bucket, "keep.bin")); !bytes.Equal(got, keep) {
			t.Errorf("keep.bin changed: %q", got)
		}
	})

	t.Run("traversal", func(t *testing.T) {
		h := &hostile{t: t, e: e}
		var nb [6]byte
		rand.Read(nb[:])
		name := "ssefs-escape-" + hex.EncodeToString(nb[:])
		// Where an escaped write would land: next to and inside the data dir, the mount's
		// parent, the temp dir, the root and the working directory of ssefs (/).
		places := []string{filepath.Dir(cfg.DataDir), cfg.DataDir, filepath.Dir(m.Dir), os.TempDir(), "/", filepath.Join(cfg.DataDir, "objects")}
		for _, key := range []struct{ target, codes string }{
			{"/" + bucket + "/../" + name, "InvalidArgument"},
			{"/" + bucket + "/%2e%2e/" + name, "InvalidArgument"},
			{"/" + bucket + "/%2E%2E%2F%2e%2e%2F" + name, "InvalidArgument"},
			{"/" + bucket + "/a/../../" + name, "InvalidArgument"},
			{"/" + bucket + "/a/../../../../../../" + name, "InvalidArgument"},
			{"/" + bucket + "//abs/" + name, "InvalidArgument"},
			{"/" + bucket + "/a/./b/" + name, "InvalidArgument"},
			{"/" + bucket + "/./" + name, "InvalidArgument"},
			{"/" + bucket + "/..%5C" + name, "InvalidArgument"},
			{"/" + bucket + "/a%5C..%5C..%5C" + name, "InvalidArgument"},
			{"/" + bucket + "/.%5C" + name, "InvalidArgument"},
			{"/../" + name, "InvalidBucketName"},
			{"/%2e%2e/" + name, "InvalidBucketName"},
			{"/./" + name, "InvalidBucketName"},
			{"/../../../" + name, "InvalidBucketName"},
		} {
			r := h.do(rawReq{method: "PUT", target: key.target, body: []byte("escaped"), contentLength: -1})
			h.want("PUT "+key.target, r, 400, strings.Split(key.codes, ",")...)
			if r.code() != "" && !strings.Contains(string(r.body), "<Message>") {
				t.Errorf("PUT %s: the error has no message: %s", key.target, r)
			}
		}
		// A bucket named . or .. cannot be made either.
		for _, target := range []string{"/..", "/.", "/%2e%2e"} {
			h.want("CreateBucket "+target, h.do(rawReq{method: "PUT", target: target, contentLength: -1}), 400, "InvalidBucketName")
		}
		// Through a multipart upload and a copy as well.
		h.want("CreateMultipartUpload of ../x", h.do(rawReq{method: "POST", target: "/" + bucket + "/%2e%2e/" + name + "?uploads", contentLength: -1}), 400, "InvalidArgument")
		h.want("CopyObject to ../x", h.do(rawReq{method: "PUT", target: "/" + bucket + "/%2e%2e/" + name, contentLength: -1,
			header: http.Header{"X-Amz-Copy-Source": {"/" + bucket + "/keep.bin"}}}), 400, "InvalidArgument")
		h.want("CopyObject from ../x", h.do(rawReq{method: "PUT", target: "/" + bucket + "/copy", contentLength: -1,
			header: http.Header{"X-Amz-Copy-Source": {"/" + bucket + "/../../" + name}}}), 404, "NoSuchKey", "InvalidArgument")

		for _, p := range places {
			if _, err := os.Lstat(filepath.Join(p, name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after the traversal attempts (%v)", filepath.Join(p, name), err)
			}
		}
		// Nowhere in the data dir's parent (which holds the data dir) either; the mount,
		// also there, is checked through S3 and the listing below.
		filepath.WalkDir(filepath.Dir(cfg.DataDir), func(p string, d os.DirEntry, err error) error {
			if p == m.Dir {
				return filepath.SkipDir
			}
			if err == nil && strings.Contains(d.Name(), name) {
				t.Errorf("%s appeared after the traversal attempts", p)
			}
			return nil
		})
		wantStored("after the traversal attempts")
	})

	t.Run("header floods", func(t *testing.T) {
		h := &hostile{t: t, e: e}
		var many bytes.Buffer
		fmt.Fprintf(&many, "GET /%s/keep.bin HTTP/1.1\r\nHost: %s\r\n", bucket, e.Host)
		for i := range 10_000 {
			fmt.Fprintf(&many, "X-Flood-%d: %d\r\n", i, i)
		}
		many.WriteString("\r\n")
		r := h.send(many.Bytes(), nil, false)
		if r.err != nil || (r.status != 431 && r.status != 400) {
			t.Errorf("a request with 10,000 headers: %s; want 431 or 400", r)
		}
		huge := fmt.Sprintf("GET /%s/keep.bin HTTP/1.1\r\nHost: %s\r\nX-Huge: %s\r\n\r\n", bucket, e.Host, strings.Repeat("h", 1<<20))
		r = h.send([]byte(huge), nil, false)
		if r.err != nil || (r.status != 431 && r.status != 400) {
			t.Errorf("a request with a 1 MiB header: %s; want 431 or 400", r)
		}
		h.alive("after the header floods", bucket)
	})

	h.alive("after all hostile requests", bucket)
	if got := readFile(t, m.P(bucket, "keep.bin")); !bytes.Equal(got, keep) {
		t.Errorf("keep.bin changed: %q", got)
	}
	m.Stop(t)
}

// repeatReader reads p over and over.
func repeatReader(p []byte) io.Reader { return &repeater{p: p} }

type repeater struct {
	p   []byte
	off int
}

func (r *repeater) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], r.p[r.off:])
		n += c
		r.off = (r.off + c) % len(r.p)
	}
	return n, nil
}

// TestHostileSlowClients runs `ssefs serve` with short timeouts and a small connection
// limit (the hidden flags): a client that sends its headers a byte at a time is cut off,
// one that never reads a large GET does not hold the server, a slow but steady download
// still completes, and the connection past the limit waits until another closes.
func TestHostileSlowClients(t *testing.T) {
	creds := newS3Creds()
	cfg := newConfig(t)
	cfg.Bucket = ""
	cfg.Env = append(cfg.Env, "SSEFS_ROOT_USER="+creds.User, "SSEFS_ROOT_PASSWORD="+creds.Password)
	const (
		headerTimeout = 2 * time.Second
		ioTimeout     = 2 * time.Second
		maxConns      = 3
	)
	srv := StartServe(t, cfg, creds, "--s3-read-header-timeout", headerTimeout.String(),
		"--s3-io-timeout", ioTimeout.String(), "--s3-max-connections", strconv.Itoa(maxConns))
	e := srv.S3
	h := &hostile{t: t, e: e}
	const bucket = "slow"
	if r := h.do(rawReq{method: "PUT", target: "/" + bucket, contentLength: -1}); r.status != 200 {
		t.Fatalf("creating the bucket: %s", r)
	}
	big := randBytes(rng(t), 16<<20)
	// Keep-alives off: an idle pooled connection would hold one of the few slots.
	c, err := minio.New(e.Host, &minio.Options{Creds: credentials.NewStaticV4(creds.User, creds.Password, ""),
		Region: hostileRegion, BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
		Transport: &http.Transport{DisableKeepAlives: true}})
	must(t, err, "minio.New")
	s3Put(t, c, bucket, "big.bin", big, minio.PutObjectOptions{})

	t.Run("headers a byte a second", func(t *testing.T) {
		conn, err := net.Dial("tcp", e.Host)
		must(t, err, "dial")
		defer conn.Close()
		head := fmt.Sprintf("GET /%s/big.bin HTTP/1.1\r\nHost: %s\r\nX-Slow: %s\r\n\r\n", bucket, e.Host, strings.Repeat("s", 100))
		stop := make(chan struct{})
		sent := make(chan int, 1)
		go func() {
			n := 0
			defer func() { sent <- n }()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for n < len(head) {
				if _, err := conn.Write([]byte{head[n]}); err != nil {
					return
				}
				n++
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		took := time.Since(start)
		close(stop)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("a client sending its headers a byte a second still holds the connection after %s (--s3-read-header-timeout %s)", took, headerTimeout)
		case err == nil && !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 408") && !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 400"):
			// net/http answers a header read that timed out with 400 (or 408) and closes.
			t.Errorf("the slow client got %q, want the connection closed (or 400/408)", buf[:n])
		case took < headerTimeout-500*time.Millisecond:
			t.Errorf("the slow client was cut off after %s, before the header timeout of %s (%v)", took, headerTimeout, err)
		}
		conn.Close()
		if got := <-sent; got >= len(head) {
			t.Errorf("the slow client could send all %d bytes of its header", got)
		}
	})

	t.Run("a GET never read", func(t *testing.T) {
		// A small receive buffer, so the server's writes block soon.
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		conn, err := d.Dial("tcp", e.Host)
		must(t, err, "dial")
		defer conn.Close()
		rq := rawReq{method: "GET", target: "/" + bucket + "/big.bin", contentLength: -2}
		hdr, _ := h.signedHeader(&rq, -1)
		_, err = conn.Write(h.head(&rq, hdr, -1))
		must(t, err, "write the GET")
		br := bufio.NewReaderSize(conn, 4096)
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(br, nil)
		must(t, err, "read the GET's header")
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(big)) {
			t.Fatalf("GET big.bin: HTTP %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
		}
		// The event: the server gives up on the write and says so.
		if !waitCond(30*time.Second, func() bool { return strings.Contains(srv.Stderr(), "s3: response aborted") }) {
			t.Fatalf("the server still writes to a client that reads nothing (no abort logged within 30s of --s3-io-timeout %s)", ioTimeout)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil || n >= int64(len(big)) {
			t.Errorf("the never-read GET delivered %d of %d bytes and ended with %v; want a cut connection", n, len(big), err)
		}
	})

	t.Run("a slow steady download", func(t *testing.T) {
		conn, err := net.Dial("tcp", e.Host)
		must(t, err, "dial")
		defer conn.Close()
		rq := rawReq{method: "GET", target: "/" + bucket + "/big.bin", contentLength: -2}
		hdr, _ := h.signedHeader(&rq, -1)
		_, err = conn.Write(h.head(&rq, hdr, -1))
		must(t, err, "write the GET")
		conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		must(t, err, "read the GET's header")
		start := time.Now()
		var got bytes.Buffer
		buf := make([]byte, 256<<10)
		for {
			n, err := io.ReadFull(resp.Body, buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(40 * time.Millisecond) // the pace of a slow client, not a synchronisation
		}
		if took := time.Since(start); took < ioTimeout {
			t.Logf("note: the slow download took only %s, less than --s3-io-timeout %s", took, ioTimeout)
		}
		if !bytes.Equal(got.Bytes(), big) {
			t.Errorf("a slow but steady download got %d bytes (sha256 %.16s), want all %d: the write timeout broke it", got.Len(), sha(got.Bytes()), len(big))
		}
	})

	t.Run("connection limit", func(t *testing.T) {
		list := rawReq{method: "GET", target: "/", contentLength: -2}
		hdr, _ := h.signedHeader(&list, -1)
		req := h.head(&list, hdr, -1)
		// maxConns connections, each served once and kept open (idle keep-alive).
		var held []net.Conn
		for i := range maxConns {
			conn, err := net.Dial("tcp", e.Host)
			must(t, err, "dial")
			defer conn.Close()
			r := exchangeKeep(conn, req, 30*time.Second)
			if r.err != nil || r.status != 200 {
				t.Fatalf("connection %d of %d: %s", i+1, maxConns, r)
			}
			held = append(held, conn)
		}
		extra, err := net.Dial("tcp", e.Host)
		must(t, err, "dial the connection past the limit")
		defer extra.Close()
		_, err = extra.Write(req)
		must(t, err, "write on the connection past the limit")
		extra.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		br := bufio.NewReader(extra)
		if _, err := br.Peek(1); err == nil {
			t.Fatalf("the connection past --s3-max-connections %d was served while %d others were open", maxConns, maxConns)
		}
		held[0].Close()
		extra.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("the waiting connection was not served after another closed: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "<Name>"+bucket+"</Name>") {
			t.Errorf("the waiting connection got HTTP %d: %s", resp.StatusCode, body)
		}
		for _, c := range held[1:] {
			c.Close()
		}
		extra.Close()
		// Responsive again for every new client.
		got, err := s3Get(t, c, bucket, "big.bin")
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("GET after the limit test: %d bytes, %v", len(got), err)
		}
	})

	h.alive("after the slow clients", bucket)
	srv.Stop(t)
}

// exchangeKeep sends req on conn and reads the answer, leaving the connection open.
func exchangeKeep(conn net.Conn, req []byte, timeout time.Duration) rawResp {
	if _, err := conn.Write(req); err != nil {
		return rawResp{err: err}
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return rawResp{err: err}
	}
	b, err := io.ReadAll(resp.Body)
	return rawResp{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}
