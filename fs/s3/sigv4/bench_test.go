package sigv4

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// Benchmarks of SigV4 verification on requests signed by real client signers
// (aws-sdk-go-v2, minio-go) and parsed from the wire as net/http's server parses them.
// A request is parsed once and verified per op (its body rewound), so the numbers are
// the verifier's alone. Run with -benchmem.

// benchDrain reads body to its end in reads of len(buf), as the engine reads a PUT body
// (chunk by chunk), and returns how much it read.
func benchDrain(b *testing.B, body *Body, buf []byte) int64 {
	var total int64
	for {
		n, err := body.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchSplit parses the wire bytes of a request and returns it with the raw body, to be
// rewound with benchRewind before every verification.
func benchSplit(b *testing.B, raw []byte) (*http.Request, []byte) {
	b.Helper()
	return wireRequest(b, raw), raw[bodyOffset(b, raw):]
}

func benchRewind(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
}

// BenchmarkVerifyHeaderSigned verifies requests signed in the Authorization header by
// aws-sdk-go-v2's signer: a GET with an empty payload (the canonical request and the
// signing key are all the work), and a 1 MiB PUT whose x-amz-content-sha256 is the body's
// SHA-256, checked while the body is read.
func BenchmarkVerifyHeaderSigned(b *testing.B) {
	ctx := context.Background()
	v := testVerifier()
	b.Run("GET-empty-payload", func(b *testing.B) {
		req, _ := http.NewRequest(http.MethodGet, "http://localhost:9000/bucket/dir/some%20key.txt", nil)
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		req.Header.Set("Range", "bytes=0-4095")
		req.Header.Set("User-Agent", "aws-sdk-go-v2/1.0")
		if err := s3Signer.SignHTTP(ctx, awsCreds(), req, emptySHA256, "s3", "us-east-1", time.Now()); err != nil {
			b.Fatal(err)
		}
		r := wireRequest(b, onWire(b, req))
		b.ReportAllocs()
		for b.Loop() {
			_, body, err := v.Verify(r)
			if err != nil {
				b.Fatal(err)
			}
			body.Close()
		}
	})
	b.Run("PUT-1MiB-sha256-payload", func(b *testing.B) {
		data := make([]byte, 1<<20)
		rand.Read(data)
		payload := sha256Hex(data)
		req, _ := http.NewRequest(http.MethodPut, "http://localhost:9000/bucket/dir/obj.bin", bytes.NewReader(data))
		req.Header.Set("X-Amz-Content-Sha256", payload)
		req.Header.Set("Content-Type", "application/octet-stream")
		if err := s3Signer.SignHTTP(ctx, awsCreds(), req, payload, "s3", "us-east-1", time.Now()); err != nil {
			b.Fatal(err)
		}
		r, raw := benchSplit(b, onWire(b, req))
		buf := make([]byte, 1<<20)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			benchRewind(r, raw)
			_, body, err := v.Verify(r)
			if err != nil {
				b.Fatal(err)
			}
			if n := benchDrain(b, body, buf); n != int64(len(data)) {
				b.Fatalf("read %d bytes", n)
			}
		}
	})
}

// BenchmarkVerifyPresigned verifies a presigned GET URL made by aws-sdk-go-v2.
func BenchmarkVerifyPresigned(b *testing.B) {
	signedAt := time.Now().UTC().Truncate(time.Second)
	req, _ := http.NewRequest(http.MethodGet, "http://localhost:9000/bucket/dir/some%20key.txt", nil)
	q := req.URL.Query()
	q.Set("X-Amz-Expires", "3600")
	req.URL.RawQuery = q.Encode()
	u, signed, err := s3Signer.PresignHTTP(context.Background(), awsCreds(), req, UnsignedPayload, "s3", "us-east-1", signedAt)
	if err != nil {
		b.Fatal(err)
	}
	get, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, vals := range signed {
		if k != "Host" {
			get.Header[k] = vals
		}
	}
	r := wireRequest(b, onWire(b, get))
	v := testVerifier()
	v.Now = func() time.Time { return signedAt.Add(time.Minute) }
	b.ReportAllocs()
	for b.Loop() {
		_, body, err := v.Verify(r)
		if err != nil {
			b.Fatal(err)
		}
		body.Close()
	}
}

// BenchmarkVerifyStreamingChunk64KiB verifies aws-chunked bodies of 1 MiB in 16 signed
// chunks of 64 KiB (minio-go's chunk size): SHA-256 of each chunk and the chained chunk
// signature. chunk-decoder is the body decoder alone; Verify-minio-go is the whole
// request as minio-go's StreamingSignV4 signs it. ns/chunk is the cost per 64 KiB chunk.
func BenchmarkVerifyStreamingChunk64KiB(b *testing.B) {
	const chunk, size = 64 << 10, 1 << 20
	data := make([]byte, size)
	rand.Read(data)
	buf := make([]byte, 1<<20)
	b.Run("chunk-decoder", func(b *testing.B) {
		stream := encodeChunked(data, chunk, StreamingPayload)
		r := &http.Request{Method: http.MethodPut, Header: http.Header{}, ContentLength: int64(len(stream))}
		r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(size))
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			benchRewind(r, stream)
			body, err := newBody(r, nil, StreamingPayload, fuzzSigner())
			if err != nil {
				b.Fatal(err)
			}
			if n := benchDrain(b, body, buf); n != size {
				b.Fatalf("read %d bytes", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(size/chunk), "ns/chunk")
	})
	b.Run("Verify-minio-go", func(b *testing.B) {
		req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/stream.bin", io.NopCloser(bytes.NewReader(data)))
		req = signer.StreamingSignV4(req, testCreds.AccessKey, testCreds.SecretKey, "", "us-east-1", size, time.Now().UTC(), newSHA256Hasher())
		r, raw := benchSplit(b, onWire(b, req))
		v := testVerifier()
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			benchRewind(r, raw)
			_, body, err := v.Verify(r)
			if err != nil {
				b.Fatal(err)
			}
			if n := benchDrain(b, body, buf); n != size {
				b.Fatalf("read %d bytes", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(size/chunk), "ns/chunk")
	})
}
