package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const (
	// maxLine bounds a chunk-header or trailer line, terminator included.
	maxLine = 4 << 10
	// maxTrailerLines bounds the number of lines after the last chunk.
	maxTrailerLines = 16
	// maxDecodedLength bounds x-amz-decoded-content-length: 5 TiB, S3's
	// largest object.
	maxDecodedLength = 5 << 40
)

// Body is the body of an authenticated request: what the frontend reads
// instead of r.Body. It yields the payload (decoded from aws-chunked when
// streamed) and checks, as it goes, every digest and signature the request
// carries. Read returns an error wrapping an *Error as soon as a check
// fails, at the latest instead of io.EOF; after an error every Read returns
// it again. Only a Read that returned io.EOF means the whole payload
// arrived and was verified.
type Body struct {
	src    io.Reader
	closer io.Closer
	dec    *chunkDecoder // nil for a plain body
	size   int64
	n      int64

	sha    hash.Hash // x-amz-content-sha256 (hex) check
	shaSum []byte

	md5    hash.Hash // Content-MD5 check
	md5Sum []byte

	ck      hash.Hash // x-amz-checksum-* header or trailer
	ckAlg   string
	ckWant  string // header value; "" when it comes in the trailer
	ckFinal Checksum

	err error
}

// Read reads decoded payload bytes.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 {
		b.n += int64(n)
		for _, h := range [...]hash.Hash{b.sha, b.md5, b.ck} {
			if h != nil {
				h.Write(p[:n])
			}
		}
	}
	switch {
	case err == io.EOF:
		if ferr := b.finish(); ferr != nil {
			err = ferr
		}
		b.err = err
	case err != nil:
		if b.dec == nil && errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: %w", errorf(ErrIncompleteBody, "the request body ended early"), err)
		}
		b.err = err
	}
	return n, err
}

// finish runs the end-of-payload checks.
func (b *Body) finish() error {
	if b.sha != nil && !bytes.Equal(b.sha.Sum(nil), b.shaSum) {
		return errorf(ErrXAmzContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if b.md5 != nil && !bytes.Equal(b.md5.Sum(nil), b.md5Sum) {
		return errorf(ErrBadDigest, "The Content-MD5 you specified did not match what was received.")
	}
	if b.ck != nil {
		want := b.ckWant
		if want == "" && b.dec != nil {
			want = b.dec.trailers["x-amz-checksum-"+b.ckAlg]
		}
		got := base64.StdEncoding.EncodeToString(b.ck.Sum(nil))
		if got != want {
			return errorf(ErrBadDigest, fmt.Sprintf("The %s you specified did not match the calculated checksum.", "x-amz-checksum-"+b.ckAlg))
		}
		b.ckFinal = Checksum{Algorithm: b.ckAlg, Value: got}
	}
	return nil
}

// Close closes the request body.
func (b *Body) Close() error {
	if b.closer == nil {
		return nil
	}
	return b.closer.Close()
}

// Size returns the payload length if known before reading: the
// Content-Length of a plain body, x-amz-decoded-content-length of a
// streamed one; else -1. A body of known size never yields another length
// without an error.
func (b *Body) Size() int64 { return b.size }

// Checksum returns the verified x-amz-checksum-* value of the payload, from
// a header or a trailer, once Read has returned io.EOF; ok is false before
// that or if the request carried none.
func (b *Body) Checksum() (c Checksum, ok bool) {
	return b.ckFinal, b.ckFinal.Algorithm != "" && b.err == io.EOF
}

// newBody prepares the body of an authenticated request.
func newBody(r *http.Request, query []queryParam, payload string, ss *streamSigner) (*Body, error) {
	src := r.Body
	if src == nil {
		src = http.NoBody
	}
	b := &Body{src: src, closer: src, size: r.ContentLength}

	// Content-MD5.
	if vals := r.Header.Values("Content-Md5"); len(vals) > 0 {
		sum, err := decodeBase64Digest(vals[0], md5.Size)
		if err != nil || len(vals) > 1 {
			return nil, errorf(ErrInvalidDigest, "The Content-MD5 you specified is not valid.")
		}
		b.md5, b.md5Sum = md5.New(), sum
	}

	// An x-amz-checksum-<alg> header is a checksum of the body, except on
	// CompleteMultipartUpload (POST ?uploadId=) where it is the object's.
	completeMPU := r.Method == http.MethodPost && hasParam(query, "uploadId")
	for name, vals := range r.Header {
		alg := checksumAlgorithm(name)
		if alg == "" || completeMPU {
			continue
		}
		if b.ck != nil || len(vals) > 1 {
			return nil, errorf(ErrInvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		if !validChecksumValue(alg, vals[0]) {
			return nil, errorf(ErrInvalidDigest, fmt.Sprintf("Value for x-amz-checksum-%s header is invalid.", alg))
		}
		b.ck, b.ckAlg, b.ckWant = newChecksumHash(alg), alg, vals[0]
	}

	// Trailers, declared in x-amz-trailer.
	var trailers []string
	for _, v := range r.Header.Values("X-Amz-Trailer") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				trailers = append(trailers, name)
			}
		}
	}

	switch payload {
	case StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer:
	default:
		if len(trailers) > 0 {
			return nil, errorf(ErrInvalidRequest, "x-amz-trailer is only allowed with a STREAMING-*-TRAILER x-amz-content-sha256")
		}
		if payload != UnsignedPayload {
			sum, _ := hex.DecodeString(payload) // checked by Verify
			b.sha, b.shaSum = sha256.New(), sum
		}
		return b, nil
	}

	// aws-chunked.
	trailer := payload != StreamingPayload
	if !trailer && len(trailers) > 0 {
		return nil, errorf(ErrInvalidRequest, "x-amz-trailer is only allowed with a STREAMING-*-TRAILER x-amz-content-sha256")
	}
	if len(trailers) > 1 {
		return nil, errorf(ErrInvalidRequest, "Expecting a single x-amz-checksum- trailer. Multiple checksum Types are not allowed.")
	}
	if len(trailers) == 1 {
		alg := checksumAlgorithm(trailers[0])
		if alg == "" {
			return nil, errorf(ErrInvalidRequest, fmt.Sprintf("The trailer %q is not supported; only x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1 and -sha256 are.", trailers[0]))
		}
		if b.ck != nil {
			return nil, errorf(ErrInvalidRequest, "Expecting a single x-amz-checksum- header or trailer. Multiple checksum Types are not allowed.")
		}
		b.ck, b.ckAlg = newChecksumHash(alg), alg
	}
	size := int64(-1)
	if vals := r.Header.Values("X-Amz-Decoded-Content-Length"); len(vals) > 0 {
		n, err := strconv.ParseInt(vals[0], 10, 64)
		if err != nil || n < 0 || len(vals) > 1 || vals[0][0] == '+' {
			return nil, errorf(ErrInvalidArgument, "x-amz-decoded-content-length must be a non-negative integer")
		}
		if n > maxDecodedLength {
			return nil, errorf(ErrEntityTooLarge, "Your proposed upload exceeds the maximum allowed size.")
		}
		size = n
	}
	if payload == StreamingUnsignedPayloadTrailer {
		ss = nil
	}
	b.size = size
	b.dec = newChunkDecoder(src, ss, trailer, trailers, size)
	b.src = b.dec
	return b, nil
}

// streamSigner computes the chained signatures of aws-chunked chunks and of
// the trailer: each covers the previous signature, starting from the seed
// (the request's own signature).
type streamSigner struct {
	key    []byte
	prefix string // amzDate + "\n" + scope + "\n"
	prev   []byte
}

// next checks that sig is the signature of the chunk (or, when trailer, of
// the trailer) whose content hashes to sum, and chains it.
func (s *streamSigner) next(sig, sum []byte, trailer bool) bool {
	var sts string
	if trailer {
		sts = "AWS4-HMAC-SHA256-TRAILER\n" + s.prefix + hex.EncodeToString(s.prev) + "\n" + hex.EncodeToString(sum)
	} else {
		sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + s.prefix + hex.EncodeToString(s.prev) + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum)
	}
	if !hmac.Equal(hmacSHA256(s.key, sts), sig) {
		return false
	}
	s.prev = sig
	return true
}

// chunkDecoder decodes an aws-chunked stream:
//
//	signed:   hex-size;chunk-signature=<64 hex>\r\n data \r\n ... 0;chunk-signature=<sig>\r\n
//	unsigned: hex-size\r\n data \r\n ... 0\r\n
//
// then either "\r\n" (or nothing) and the end of the body, or, with
// trailers, lines "name:value" (and, signed, "x-amz-trailer-signature:<sig>")
// ended by CRLF or LF, blank lines ignored, up to the end of the body.
// It never buffers more than one line; chunk data is streamed through.
type chunkDecoder struct {
	br       *bufio.Reader
	ss       *streamSigner // nil: unsigned chunks
	trailer  bool
	expect   []string
	limit    int64 // x-amz-decoded-content-length, or -1
	total    int64
	inData   bool
	left     int64     // data bytes left in the current chunk
	h        hash.Hash // SHA-256 of the current chunk (signed)
	want     []byte    // claimed signature of the current chunk
	trailers map[string]string
	done     bool
	err      error
}

func newChunkDecoder(r io.Reader, ss *streamSigner, trailer bool, expect []string, limit int64) *chunkDecoder {
	d := &chunkDecoder{br: bufio.NewReaderSize(r, maxLine), ss: ss, trailer: trailer, expect: expect, limit: limit}
	if ss != nil {
		d.h = sha256.New()
	}
	return d
}

func malformed(msg string) error {
	return errorf(ErrIncompleteBody, "malformed aws-chunked body: "+msg)
}

// ioError maps a read error of the underlying body.
func ioError(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", errorf(ErrIncompleteBody, "the aws-chunked body ended early"), io.ErrUnexpectedEOF)
	}
	return err
}

func (d *chunkDecoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for !d.inData {
		if d.done {
			return 0, io.EOF
		}
		if err := d.nextChunk(); err != nil {
			d.err = err
			return 0, err
		}
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.br.Read(p)
	d.left -= int64(n)
	d.total += int64(n)
	if d.h != nil {
		d.h.Write(p[:n])
	}
	if d.left == 0 {
		err = d.endChunk()
	} else if err != nil {
		err = ioError(err)
	}
	if err != nil {
		d.err = err
	}
	return n, err
}

// readLine reads one line of at most maxLine bytes and returns it without
// its LF, and whether it ended in CRLF. At the end of the body it returns
// what there was and io.EOF.
func (d *chunkDecoder) readLine() (line []byte, crlf bool, err error) {
	line, err = d.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, false, malformed("line too long")
	case err == io.EOF:
		return line, false, io.EOF
	case err != nil:
		return nil, false, ioError(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1], true, nil
	}
	return line, false, nil
}

// nextChunk reads a chunk header and, for the last chunk, the rest.
func (d *chunkDecoder) nextChunk() error {
	line, crlf, err := d.readLine()
	if err != nil {
		if err == io.EOF {
			return ioError(io.EOF)
		}
		return err
	}
	if !crlf {
		return malformed("chunk header not ended by CRLF")
	}
	sizeHex, ext, hasExt := bytes.Cut(line, []byte(";"))
	if len(sizeHex) == 0 || len(sizeHex) > 16 {
		return malformed("bad chunk size")
	}
	size, err := strconv.ParseUint(string(sizeHex), 16, 64)
	if err != nil {
		return malformed("bad chunk size")
	}
	if size > MaxChunkSize {
		return errorf(ErrEntityTooLarge, "aws-chunked chunk larger than 5 GiB")
	}
	if d.limit >= 0 && int64(size) > d.limit-d.total {
		return errorf(ErrIncompleteBody, "the aws-chunked body is longer than x-amz-decoded-content-length")
	}
	if d.ss != nil {
		v, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
		if !hasExt || !ok || len(v) != 64 {
			return malformed("chunk without a chunk-signature")
		}
		d.want = make([]byte, sha256.Size)
		if _, err := hex.Decode(d.want, v); err != nil {
			return malformed("bad chunk-signature")
		}
	} else if hasExt {
		return malformed("unexpected chunk extension")
	}
	if size > 0 {
		d.inData, d.left = true, int64(size)
		if d.h != nil {
			d.h.Reset()
		}
		return nil
	}

	// The last chunk.
	if d.ss != nil {
		d.h.Reset()
		if !d.ss.next(d.want, d.h.Sum(nil), false) {
			return errorf(ErrSignatureDoesNotMatch, "the signature of the final aws-chunked chunk does not match")
		}
	}
	if d.limit >= 0 && d.total != d.limit {
		return errorf(ErrIncompleteBody, "the aws-chunked body is shorter than x-amz-decoded-content-length")
	}
	if d.trailer {
		tr, canon, sig, err := parseTrailer(d.br, d.expect, d.ss != nil)
		if err != nil {
			return err
		}
		if d.ss != nil {
			sum := sha256.Sum256(canon)
			if !d.ss.next(sig, sum[:], true) {
				return errorf(ErrSignatureDoesNotMatch, "the aws-chunked trailer signature does not match")
			}
		}
		d.trailers = tr
	} else {
		// "\r\n" and the end, or just the end.
		line, crlf, err := d.readLine()
		switch {
		case err == io.EOF && len(line) == 0:
		case err == nil && crlf && len(line) == 0:
			if _, err := d.br.ReadByte(); err != io.EOF {
				if err == nil {
					return malformed("data after the final chunk")
				}
				return ioError(err)
			}
		case err != nil && err != io.EOF:
			return err
		default:
			return malformed("data after the final chunk")
		}
	}
	d.done = true
	return nil
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (d *chunkDecoder) endChunk() error {
	var crlf [2]byte
	if _, err := io.ReadFull(d.br, crlf[:]); err != nil {
		return ioError(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return malformed("chunk data not followed by CRLF")
	}
	d.inData = false
	if d.ss != nil && !d.ss.next(d.want, d.h.Sum(nil), false) {
		return errorf(ErrSignatureDoesNotMatch, "an aws-chunked chunk signature does not match")
	}
	return nil
}

// parseTrailer reads the trailer section after the last chunk, up to the end
// of br: lines "name:value" for exactly the names in expect (lower case, in
// any order, each once) and, when signed, a last line
// "x-amz-trailer-signature:<64 hex>". Lines end with CRLF or LF (minio-go
// ends trailer lines with a bare LF); blank lines are ignored. It returns the
// values by lower-case name, the canonical trailer ("name:value\n" per
// header, in order: what the trailer signature covers) and the signature.
func parseTrailer(br *bufio.Reader, expect []string, signed bool) (map[string]string, []byte, []byte, error) {
	tr := make(map[string]string, len(expect))
	var canon, sig []byte
	for lines := 0; ; lines++ {
		if lines == maxTrailerLines {
			return nil, nil, nil, malformed("too many trailer lines")
		}
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, nil, nil, malformed("trailer line too long")
		}
		if err != nil && err != io.EOF {
			return nil, nil, nil, ioError(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) > 0 {
			k, v, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return nil, nil, nil, malformed("trailer line without ':'")
			}
			name := strings.ToLower(string(bytes.TrimSpace(k)))
			value := string(bytes.TrimSpace(v))
			switch {
			case sig != nil:
				return nil, nil, nil, malformed("trailer after x-amz-trailer-signature")
			case name == "x-amz-trailer-signature":
				if !signed {
					return nil, nil, nil, malformed("unexpected x-amz-trailer-signature")
				}
				sig = make([]byte, sha256.Size)
				if len(value) != 64 {
					return nil, nil, nil, malformed("bad x-amz-trailer-signature")
				}
				if _, err := hex.Decode(sig, []byte(value)); err != nil {
					return nil, nil, nil, malformed("bad x-amz-trailer-signature")
				}
			default:
				if _, dup := tr[name]; dup || !slices.Contains(expect, name) {
					return nil, nil, nil, malformed(fmt.Sprintf("unexpected trailer %q", name))
				}
				tr[name] = value
				canon = append(canon, name+":"+value+"\n"...)
			}
		}
		if err == io.EOF {
			break
		}
	}
	for _, name := range expect {
		if _, ok := tr[name]; !ok {
			return nil, nil, nil, errorf(ErrIncompleteBody, fmt.Sprintf("the trailer %s is missing", name))
		}
	}
	if signed && sig == nil {
		return nil, nil, nil, errorf(ErrIncompleteBody, "the x-amz-trailer-signature is missing")
	}
	return tr, canon, sig, nil
}
