package sigv4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		"AWS4-HMAC-SHA256 Credential=AK/20130524/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		"AWS4-HMAC-SHA256 Credential=a/b/20130524/r/s3/aws4_request,SignedHeaders=host,Signature=F0E8BDB87C964420E857BD35B5D6ED310BD44F0170ABA48DD91039C6036BDB41",
		"AWS4-HMAC-SHA256 SignedHeaders=host,Signature=00,Credential=x",
		"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"AWS4-ECDSA-P256-SHA256 Credential=x",
		"AWS4-HMAC-SHA256 Credential=,,,=",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		s, err := parseAuthorization(h)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if s.accessKey == "" || s.region == "" || s.service != "s3" || len(s.date) != 8 || len(s.signature) != sha256.Size || len(s.signedHeaders) == 0 {
			t.Fatalf("accepted %q as %+v", h, s)
		}
		// What was parsed prints back to something that parses the same.
		again := "AWS4-HMAC-SHA256 Credential=" + s.accessKey + "/" + s.scope() + ", SignedHeaders=" + strings.Join(s.signedHeaders, ";") + ", Signature=" + hex.EncodeToString(s.signature)
		s2, err := parseAuthorization(again)
		if err != nil || s2.accessKey != s.accessKey || s2.scope() != s.scope() || !bytes.Equal(s2.signature, s.signature) || strings.Join(s2.signedHeaders, ";") != strings.Join(s.signedHeaders, ";") {
			t.Fatalf("%q -> %q: %v", h, again, err)
		}
	})
}

func FuzzParsePresign(f *testing.F) {
	f.Add(examplePresignQuery)
	f.Add(strings.Replace(examplePresignQuery, "86400", "604800", 1))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20130524%2Fr%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=1&X-Amz-SignedHeaders=host%3Bx-amz-meta-a&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404&versionId=1&acl")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256")
	f.Add("a=%zz&b")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw)
		if err != nil {
			return
		}
		_ = canonicalQuery(q, true)
		s, err := parsePresign(q)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeAuthorizationQueryParametersError {
				t.Fatalf("error %v", err)
			}
			return
		}
		if s.expires < time.Second || s.expires > MaxPresignExpiry || len(s.signature) != sha256.Size || s.accessKey == "" || len(s.signedHeaders) == 0 {
			t.Fatalf("accepted %q as %+v", raw, s)
		}
		if _, err := time.Parse(iso8601, s.amzDate); err != nil {
			t.Fatal(err)
		}
	})
}

// The decoder fuzz works on streams made by an encoder written here, for
// the three modes, with the fuzzer choosing the payload, the chunk size and
// one byte to change.

var fuzzSeed = bytes.Repeat([]byte{0x5a}, 32)

func fuzzSigner() *streamSigner {
	return &streamSigner{
		key:    signingKey(exampleSK, "20130524", "us-east-1", "s3"),
		prefix: "20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n",
		prev:   fuzzSeed,
	}
}

// sign is the signature of a chunk (or trailer) after prev.
func (s *streamSigner) sign(sum []byte, trailer bool) []byte {
	var sts string
	if trailer {
		sts = "AWS4-HMAC-SHA256-TRAILER\n" + s.prefix + hex.EncodeToString(s.prev) + "\n" + hex.EncodeToString(sum)
	} else {
		sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + s.prefix + hex.EncodeToString(s.prev) + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum)
	}
	s.prev = hmacSHA256(s.key, sts)
	return s.prev
}

var fuzzModes = []string{StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer}

// encodeChunked encodes payload as aws-chunked in mode, with chunks of
// chunk bytes; the trailer modes carry a CRC32C trailer.
func encodeChunked(payload []byte, chunk int, mode string) []byte {
	var b bytes.Buffer
	ss := fuzzSigner()
	writeChunk := func(data []byte) {
		b.WriteString(strconv.FormatInt(int64(len(data)), 16))
		if mode != StreamingUnsignedPayloadTrailer {
			sum := sha256.Sum256(data)
			b.WriteString(";chunk-signature=" + hex.EncodeToString(ss.sign(sum[:], false)))
		}
		b.WriteString("\r\n")
		b.Write(data)
		if len(data) > 0 {
			b.WriteString("\r\n")
		}
	}
	for rest := payload; len(rest) > 0; {
		n := min(chunk, len(rest))
		writeChunk(rest[:n])
		rest = rest[n:]
	}
	writeChunk(nil)
	if mode == StreamingPayload {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	tr := "x-amz-checksum-crc32c:" + crc32cB64(payload) + "\n"
	b.WriteString(strings.TrimSuffix(tr, "\n") + "\r\n")
	if mode == StreamingPayloadTrailer {
		sum := sha256.Sum256([]byte(tr))
		b.WriteString("x-amz-trailer-signature:" + hex.EncodeToString(ss.sign(sum[:], true)) + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// decodeChunked reads stream as the body of a request in mode, in reads
// of readSize bytes.
func decodeChunked(t *testing.T, stream []byte, mode string, decodedLength int64, readSize int) ([]byte, error) {
	r := &http.Request{Method: http.MethodPut, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(stream)), ContentLength: int64(len(stream))}
	if mode != StreamingPayload {
		r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32c")
	}
	if decodedLength >= 0 {
		r.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(decodedLength, 10))
	}
	b, err := newBody(r, nil, mode, fuzzSigner())
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, readSize)
	for {
		n, err := b.Read(buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("Read returned %d", n)
		}
		out = append(out, buf[:n]...)
		if len(out) > len(stream) {
			t.Fatalf("decoded %d bytes from a %d-byte stream", len(out), len(stream))
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return out, err
		}
	}
}

func FuzzChunkedDecoder(f *testing.F) {
	f.Add([]byte("hello, world"), uint8(0), uint16(5), uint32(3), byte(1), uint16(7))
	f.Add([]byte("hello, world"), uint8(1), uint16(64), uint32(40), byte(0x20), uint16(1))
	f.Add([]byte("hello, world"), uint8(2), uint16(1), uint32(200), byte(0x80), uint16(4096))
	f.Add(bytes.Repeat([]byte("a"), 1000), uint8(1), uint16(333), uint32(0), byte(0), uint16(100))
	f.Add([]byte{}, uint8(0), uint16(0), uint32(0), byte(1), uint16(1))
	f.Add([]byte{}, uint8(2), uint16(0), uint32(5), byte(1), uint16(1))
	// Raw streams (decoded as they are): the AWS examples and minio-go's
	// bare-LF trailer line.
	f.Add([]byte(exampleChunkedBody(exampleChunkSigs, "")), uint8(3), uint16(0), uint32(0), byte(0), uint16(8192))
	f.Add([]byte("a\r\n0123456789\r\n0\r\nx-amz-checksum-crc32c:3DSvYA==\n\r\n\r\n"), uint8(5), uint16(0), uint32(0), byte(0), uint16(3))
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32c:mnG7TA==\r\n\r\n"), uint8(5), uint16(0), uint32(0), byte(0), uint16(2))
	f.Add(encodeChunked([]byte("signed stream"), 4, StreamingPayload), uint8(3), uint16(0), uint32(0), byte(0), uint16(5))
	f.Add(encodeChunked([]byte("signed stream"), 4, StreamingPayloadTrailer), uint8(4), uint16(0), uint32(0), byte(0), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, chunk uint16, pos uint32, x byte, readSize uint16) {
		rs := 1 + int(readSize)%20000
		m := fuzzModes[int(mode)%3]
		if mode >= 3 {
			// data is a raw stream: the decoder never panics and never
			// yields more than the stream holds (checked by decodeChunked).
			// Forging a signed stream would take forging HMAC-SHA256: the
			// structured cases below check that changed streams fail.
			decodeChunked(t, data, m, -1, rs)
			return
		}
		// Bounded, so that 1-byte chunks stay fast (each costs an HMAC).
		payload := data[:min(len(data), 16<<10)]
		stream := encodeChunked(payload, 1+int(chunk)%70000, m)
		out, err := decodeChunked(t, stream, m, int64(len(payload)), rs)
		if err != nil || !bytes.Equal(out, payload) {
			t.Fatalf("valid %s stream: %d bytes, %v", m, len(out), err)
		}
		out, err = decodeChunked(t, stream, m, -1, rs)
		if err != nil || !bytes.Equal(out, payload) {
			t.Fatalf("valid %s stream without decoded length: %d bytes, %v", m, len(out), err)
		}
		// A wrong decoded length.
		if _, err := decodeChunked(t, stream, m, int64(len(payload))+1, rs); err == nil {
			t.Fatal("longer x-amz-decoded-content-length accepted")
		}
		if x == 0 {
			return
		}
		// One byte changed: an error, or (harmless changes such as the
		// case of a hex digit) exactly the same payload.
		tampered := bytes.Clone(stream)
		tampered[int(pos)%len(tampered)] ^= x
		out, err = decodeChunked(t, tampered, m, -1, rs)
		if err == nil && !bytes.Equal(out, payload) {
			t.Fatalf("tampered %s stream accepted: byte %d ^ %#x: %q -> %q", m, int(pos)%len(stream), x, payload, out)
		}
		// Truncated: an error, but for the line ends after the last line
		// (the end of the body ends the trailer too).
		cut := int(pos) % len(stream)
		out, err = decodeChunked(t, stream[:cut], m, -1, rs)
		if err == nil && (!bytes.Equal(out, payload) || len(stream)-cut > 4 || strings.TrimSpace(string(stream[cut:])) != "") {
			t.Fatalf("%s stream truncated at %d of %d accepted", m, cut, len(stream))
		}
	})
}

func FuzzTrailer(f *testing.F) {
	f.Add([]byte("x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n"), true)
	f.Add([]byte("x-amz-checksum-crc32c:3DSvYA==\n\r\nx-amz-trailer-signature:65bb40e31ae99e9f1869abc52a1ab62e5f862968f10c4a581ce44086a7896f48\r\n\r\n"), true)
	f.Add([]byte("x-amz-checksum-crc32c:3DSvYA==\n\r\n\r\n"), false)
	f.Add([]byte("X-Amz-Checksum-CRC32C :  AAAAAA==  \r\n"), false)
	f.Add([]byte("x-amz-checksum-crc32c:a\r\nx-amz-checksum-crc32c:b\r\n"), false)
	f.Add([]byte(strings.Repeat("\r\n", 20)), false)
	f.Add([]byte(strings.Repeat("x", 5000)), false)
	f.Fuzz(func(t *testing.T, data []byte, signed bool) {
		br := bufio.NewReaderSize(bytes.NewReader(data), maxLine)
		tr, canon, sig, err := parseTrailer(br, []string{"x-amz-checksum-crc32c"}, signed)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		v, ok := tr["x-amz-checksum-crc32c"]
		if !ok || len(tr) != 1 {
			t.Fatalf("trailers %v", tr)
		}
		if want := "x-amz-checksum-crc32c:" + v + "\n"; string(canon) != want {
			t.Fatalf("canonical %q, want %q", canon, want)
		}
		if signed != (sig != nil) || sig != nil && len(sig) != sha256.Size {
			t.Fatalf("signature %x", sig)
		}
		if len(canon) > len(data)+1 {
			t.Fatalf("canonical trailer longer than the input")
		}
	})
}
