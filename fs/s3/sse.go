package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/ssefs/ssefs/fs"
)

// Encryption request headers, as AWS and MinIO define them.
const (
	hdrSSE            = "X-Amz-Server-Side-Encryption"
	hdrSSEKMSKeyID    = "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"
	hdrSSEContext     = "X-Amz-Server-Side-Encryption-Context"
	hdrSSECAlgorithm  = "X-Amz-Server-Side-Encryption-Customer-Algorithm"
	hdrSSECKey        = "X-Amz-Server-Side-Encryption-Customer-Key"
	hdrSSECKeyMD5     = "X-Amz-Server-Side-Encryption-Customer-Key-Md5"
	copySourcePrefix  = "X-Amz-Copy-Source-" // of the copy-source conditions
	ssecSuffixAlg     = "Server-Side-Encryption-Customer-Algorithm"
	ssecSuffixKey     = "Server-Side-Encryption-Customer-Key"
	ssecSuffixMD5     = "Server-Side-Encryption-Customer-Key-Md5"
	sseAES256         = "AES256"
	sseKMS            = "aws:kms"
	kmsARNPrefix      = "arn:aws:kms:"
	maxSSEContextSize = 8 << 10
)

// SSE-C header prefixes: of the object written or read, and of a copy's source.
const (
	ssecObject = "X-Amz-"
	ssecSource = "X-Amz-Copy-Source-"
)

// parseClientKey reads the SSE-C headers with prefix ssecObject or ssecSource. It
// returns nil when none is present.
func (s *Server) parseClientKey(r *http.Request, prefix string) (*[32]byte, error) {
	h := r.Header
	alg := h.Get(prefix + ssecSuffixAlg)
	key := h.Get(prefix + ssecSuffixKey)
	sum := h.Get(prefix + ssecSuffixMD5)
	if alg == "" && key == "" && sum == "" {
		return nil, nil
	}
	if r.TLS == nil && !s.allowInsecureSSEC && !fromLoopback(r) {
		return nil, errSSECNeedsTLS
	}
	return parseSSEC(alg, key, sum)
}

// fromLoopback tells whether the client is on this host: then the customer key never
// crosses a network, and plain HTTP exposes it to nobody who could not read this
// process's memory anyway (DESIGN.md: SSE-C needs TLS, except on loopback).
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseSSEC validates the three SSE-C values. Error messages never quote the key.
func parseSSEC(alg, key, sum string) (*[32]byte, error) {
	switch {
	case alg == "":
		return nil, errInvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.")
	case alg != sseAES256:
		return nil, newErr("InvalidEncryptionAlgorithmError", http.StatusBadRequest, "The encryption request you specified is not valid. The valid value is AES256.")
	case key == "":
		return nil, errInvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.")
	case sum == "":
		return nil, errInvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.")
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) != 32 {
		return nil, errInvalidArgument("The secret key was invalid for the specified algorithm.")
	}
	want, err := base64.StdEncoding.DecodeString(sum)
	got := md5.Sum(raw)
	if err != nil || !bytes.Equal(want, got[:]) {
		return nil, errInvalidArgument("The calculated MD5 hash of the key did not match the hash that was provided.")
	}
	var k [32]byte
	copy(k[:], raw)
	clear(raw)
	return &k, nil
}

// parsePutSSE reads how a new object (PUT, copy destination, multipart upload) is to
// be encrypted. No header means the bucket's default, which the engine resolves.
func (s *Server) parsePutSSE(r *http.Request) (fs.SSE, error) {
	h := r.Header
	clientKey, err := s.parseClientKey(r, ssecObject)
	if err != nil {
		return fs.SSE{}, err
	}
	mode, keyID, ctxHdr := h.Get(hdrSSE), h.Get(hdrSSEKMSKeyID), h.Get(hdrSSEContext)
	if clientKey != nil {
		if mode != "" || keyID != "" || ctxHdr != "" {
			return fs.SSE{}, errInvalidArgument("Server Side Encryption with Customer provided key is incompatible with the encryption method specified.")
		}
		return fs.SSE{Type: fs.SSEC, ClientKey: clientKey}, nil
	}
	switch mode {
	case "":
		if keyID != "" || ctxHdr != "" {
			return fs.SSE{}, errInvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms.")
		}
		return fs.SSE{}, nil
	case sseAES256:
		if keyID != "" || ctxHdr != "" {
			return fs.SSE{}, errInvalidArgument("A KMS key ID or context is only valid with x-amz-server-side-encryption: aws:kms.")
		}
		return fs.SSE{Type: fs.SSES3}, nil
	case sseKMS:
		// The engine binds the object's data key to {"bucket": B} plus this context,
		// keeps it with the object, and refuses a context that names "bucket".
		var kmsCtx map[string]string
		if ctxHdr != "" {
			if kmsCtx, err = parseSSEContext(ctxHdr); err != nil {
				return fs.SSE{}, err
			}
		}
		return fs.SSE{Type: fs.SSEKMS, KeyName: strings.TrimPrefix(keyID, kmsARNPrefix), Context: kmsCtx}, nil
	}
	return fs.SSE{}, errInvalidArgument("The encryption method specified is not supported: x-amz-server-side-encryption must be AES256 or aws:kms.")
}

// parseSSEContext reads a base64-encoded JSON object of string values. An empty
// object is no context (nil).
func parseSSEContext(v string) (map[string]string, error) {
	if len(v) > maxSSEContextSize {
		return nil, errInvalidArgument("The x-amz-server-side-encryption-context header is too large.")
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, errInvalidArgument("The x-amz-server-side-encryption-context header is not valid base64.")
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errInvalidArgument("The x-amz-server-side-encryption-context header must be a base64-encoded JSON object of strings.")
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// encodeSSEContext is the x-amz-server-side-encryption-context value for a context:
// base64 of its JSON, keys sorted (encoding/json sorts map keys) so the same context
// always gives the same header, and without HTML escaping, so it is the JSON a client
// would have written.
func encodeSSEContext(c map[string]string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return "" // unreachable: a map of strings always encodes
	}
	return base64.StdEncoding.EncodeToString(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// setSSEHeaders tells the client how an object is encrypted. The KMS key is shown as
// "arn:aws:kms:NAME", as MinIO shows it (and accepts it back: the prefix is stripped
// on input), so a client that echoes it gets the same key; the user's encryption
// context, if any, is shown as AWS shows it.
func setSSEHeaders(h http.Header, sseType, keyName string, clientKeyMD5 [16]byte, kmsCtx map[string]string) {
	switch sseType {
	case fs.SSES3:
		h.Set(hdrSSE, sseAES256)
	case fs.SSEKMS:
		h.Set(hdrSSE, sseKMS)
		if keyName != "" {
			h.Set(hdrSSEKMSKeyID, kmsARNPrefix+keyName)
		}
		if len(kmsCtx) > 0 {
			h.Set(hdrSSEContext, encodeSSEContext(kmsCtx))
		}
	case fs.SSEC:
		h.Set(hdrSSECAlgorithm, sseAES256)
		h.Set(hdrSSECKeyMD5, base64.StdEncoding.EncodeToString(clientKeyMD5[:]))
	}
}
