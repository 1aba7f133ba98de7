// Package sigv4 authenticates S3 requests signed with AWS Signature Version 4,
// in every form that real S3 clients send (aws cli/botocore, s3cmd, mc and
// minio-go, the AWS SDKs):
//
//   - the Authorization header ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
//     Signature=...") with x-amz-content-sha256 set to the hex SHA-256 of the body,
//     UNSIGNED-PAYLOAD, or one of the aws-chunked streaming forms
//     STREAMING-AWS4-HMAC-SHA256-PAYLOAD (every chunk signed),
//     STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (chunks and a trailer signed) and
//     STREAMING-UNSIGNED-PAYLOAD-TRAILER (unsigned chunks, a checksum trailer);
//   - presigned URLs (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
//     X-Amz-SignedHeaders, X-Amz-Signature in the query), payload UNSIGNED-PAYLOAD.
//
// Verify checks the signature before anything is read, and returns a *Body
// to read instead of r.Body. The body checks, while it is read and without
// ever buffering it whole, everything the request promised about it: the
// SHA-256 of x-amz-content-sha256, Content-MD5, an x-amz-checksum-* header,
// the chunk signatures and the trailer (signature and checksum) of the
// streaming forms; it yields only the decoded payload.
//
// The contract for the caller (the S3 frontend): a body whose content fails
// a check makes Read return an error wrapping an *Error no later than at
// the end of the stream (bytes already handed out before that may be
// forged). So the frontend must not commit anything (an object, a part)
// until Read has returned io.EOF cleanly; any other error aborts the
// operation and is mapped, with errors.As, to the S3 error of the *Error.
//
// There is no anonymous access: a request without any signature is
// AccessDenied. Signature Version 2 and SigV4a are not supported.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Payload hash values of x-amz-content-sha256 (besides a hex SHA-256).
const (
	UnsignedPayload                 = "UNSIGNED-PAYLOAD"
	StreamingPayload                = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

const (
	// DefaultMaxSkew is the largest difference between a request's signing
	// time and the server's clock that is accepted (as S3 does).
	DefaultMaxSkew = 15 * time.Minute
	// MaxPresignExpiry is the largest X-Amz-Expires: 7 days.
	MaxPresignExpiry = 7 * 24 * time.Hour
	// MaxChunkSize is the largest aws-chunked chunk accepted: 5 GiB, the
	// largest single PUT or part. aws-sdk-go-v2 sends a body of known length
	// as one chunk.
	MaxChunkSize = 5 << 30

	algorithm    = "AWS4-HMAC-SHA256"
	iso8601      = "20060102T150405Z"
	yyyymmdd     = "20060102"
	terminator   = "aws4_request"
	service      = "s3"
	emptySHA256  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	maxAuthParam = 8 << 10 // longest Authorization header / presign parameter accepted
)

// Credentials is an access key pair.
type Credentials struct{ AccessKey, SecretKey string }

// CredentialStore finds the secret key of an access key.
type CredentialStore interface {
	Lookup(accessKey string) (Credentials, bool)
}

// Static returns a CredentialStore holding creds.
func Static(creds ...Credentials) CredentialStore {
	m := make(staticStore, len(creds))
	for _, c := range creds {
		m[c.AccessKey] = c
	}
	return m
}

type staticStore map[string]Credentials

func (s staticStore) Lookup(accessKey string) (Credentials, bool) {
	c, ok := s[accessKey]
	return c, ok
}

// Verifier authenticates requests. Its zero value is not usable: Creds must
// be set. A Verifier is safe for concurrent use.
type Verifier struct {
	Creds CredentialStore
	// Region is the only region accepted in the credential scope. Empty
	// accepts whatever region the client signed with (as MinIO does by
	// default): a client configured for any region just works, and nothing
	// is weakened, since the region only enters the key derivation.
	Region string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is the accepted clock skew; 0 means DefaultMaxSkew.
	MaxSkew time.Duration
}

// Auth describes an authenticated request.
type Auth struct {
	AccessKey string
	Region    string    // region of the credential scope
	Time      time.Time // signing time
	Presigned bool
	Expires   time.Time // presigned only: when the URL expires
	// Payload is the x-amz-content-sha256 mode: a hex SHA-256, or one of
	// UnsignedPayload, StreamingPayload, StreamingPayloadTrailer,
	// StreamingUnsignedPayloadTrailer.
	Payload string
}

// signature is what a request claims, from its Authorization header or its
// presign query.
type signature struct {
	accessKey     string
	date          string // yyyymmdd of the credential scope
	region        string
	service       string
	signedHeaders []string
	signature     []byte
	// presign only
	amzDate string
	expires time.Duration
}

func (s *signature) scope() string {
	return s.date + "/" + s.region + "/" + s.service + "/" + terminator
}

// Verify authenticates r. On success it returns the body to read instead of
// r.Body (never nil; for a request without a body it reads as empty): see
// the package documentation for what it checks and the caller's contract.
// All errors wrap an *Error.
func (v *Verifier) Verify(r *http.Request) (Auth, *Body, error) {
	query, qerr := parseQuery(r.URL.RawQuery)
	authz := r.Header.Values("Authorization")
	presign := qerr == nil && (hasParam(query, "X-Amz-Algorithm") || hasParam(query, "X-Amz-Credential") || hasParam(query, "X-Amz-Signature"))
	switch {
	case len(authz) > 0 && presign:
		return Auth{}, nil, errorf(ErrInvalidRequest, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case len(authz) == 0 && !presign:
		if qerr != nil {
			return Auth{}, nil, errorf(ErrInvalidRequest, "malformed query string")
		}
		return Auth{}, nil, errorf(ErrAccessDenied, "Anonymous access is not allowed; sign the request with AWS Signature Version 4.")
	case len(authz) > 1:
		return Auth{}, nil, errorf(ErrAuthorizationHeaderMalformed, "more than one Authorization header")
	case qerr != nil:
		return Auth{}, nil, errorf(ErrInvalidRequest, "malformed query string")
	}

	var (
		sig     *signature
		err     error
		amzDate string
		t       time.Time
		auth    Auth
	)
	malformed := ErrAuthorizationHeaderMalformed
	if presign {
		malformed = ErrAuthorizationQueryParametersError
		sig, err = parsePresign(query)
		if err != nil {
			return Auth{}, nil, err
		}
		amzDate = sig.amzDate
		t, _ = time.Parse(iso8601, amzDate) // checked by parsePresign
	} else {
		sig, err = parseAuthorization(authz[0])
		if err != nil {
			return Auth{}, nil, err
		}
		amzDate, t, err = headerDate(r)
		if err != nil {
			return Auth{}, nil, err
		}
	}

	if v.Region != "" && sig.region != v.Region {
		return Auth{}, nil, errorf(malformed, fmt.Sprintf("the region '%s' is wrong; expecting '%s'", sig.region, v.Region))
	}
	if sig.date != t.Format(yyyymmdd) {
		return Auth{}, nil, errorf(malformed, fmt.Sprintf("the credential date '%s' does not match the request date '%s'", sig.date, amzDate))
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	n := now()
	if presign {
		if t.Sub(n) > skew {
			return Auth{}, nil, errorf(ErrAccessDenied, "Request is not valid yet")
		}
		if n.After(t.Add(sig.expires)) {
			return Auth{}, nil, errorf(ErrAccessDenied, "Request has expired")
		}
		auth.Expires = t.Add(sig.expires)
	} else if d := t.Sub(n); d > skew || d < -skew {
		return Auth{}, nil, errorf(ErrRequestTimeTooSkewed, fmt.Sprintf("The difference between the request time (%s) and the server's time (%s) is too large.", amzDate, n.UTC().Format(iso8601)))
	}

	if !slices.Contains(sig.signedHeaders, "host") {
		return Auth{}, nil, errorf(malformed, "the host header must be signed")
	}
	for name := range r.Header {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-amz-") && !slices.Contains(sig.signedHeaders, l) {
			return Auth{}, nil, errorf(ErrAccessDenied, "There were headers present in the request which were not signed: "+l)
		}
	}

	// The payload hash, last line of the canonical request.
	var payload string
	if presign {
		payload = UnsignedPayload
		if p, ok := param(query, "X-Amz-Content-Sha256"); ok {
			payload = p
		}
		if payload != UnsignedPayload && !isHexSHA256(payload) {
			return Auth{}, nil, errorf(ErrAuthorizationQueryParametersError, "X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a hex SHA-256")
		}
	} else {
		vals := r.Header.Values("X-Amz-Content-Sha256")
		switch {
		case len(vals) > 1:
			return Auth{}, nil, errorf(ErrInvalidArgument, "more than one x-amz-content-sha256 header")
		case len(vals) == 0:
			// S3 requires the header; without it only an empty body can match.
			if r.ContentLength != 0 {
				return Auth{}, nil, errorf(ErrMissingSecurityHeader, "Your request is missing required header: x-amz-content-sha256")
			}
			payload = emptySHA256
		default:
			payload = vals[0]
			switch payload {
			case UnsignedPayload, StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer:
			default:
				if !isHexSHA256(payload) {
					return Auth{}, nil, errorf(ErrInvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.")
				}
			}
		}
	}

	creds, ok := v.Creds.Lookup(sig.accessKey)
	if !ok {
		return Auth{}, nil, errorf(ErrInvalidAccessKeyID, "The AWS Access Key Id you provided does not exist in our records.")
	}
	key := signingKey(creds.SecretKey, sig.date, sig.region, sig.service)
	if !checkSignature(r, query, presign, sig, amzDate, payload, key) {
		return Auth{}, nil, errorf(ErrSignatureDoesNotMatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}

	auth.AccessKey = sig.accessKey
	auth.Region = sig.region
	auth.Time = t
	auth.Presigned = presign
	auth.Payload = payload
	body, err := newBody(r, query, payload, &streamSigner{
		key:    key,
		prefix: amzDate + "\n" + sig.scope() + "\n",
		prev:   sig.signature,
	})
	if err != nil {
		return Auth{}, nil, err
	}
	return auth, body, nil
}

// headerDate returns the request's signing time from x-amz-date, else Date.
func headerDate(r *http.Request) (string, time.Time, error) {
	if d := r.Header.Get("X-Amz-Date"); d != "" {
		t, err := time.Parse(iso8601, d)
		if err != nil {
			return "", time.Time{}, errorf(ErrAccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
		}
		return d, t, nil
	}
	if d := r.Header.Get("Date"); d != "" {
		t, err := http.ParseTime(d)
		if err != nil {
			return "", time.Time{}, errorf(ErrAccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
		}
		t = t.UTC()
		return t.Format(iso8601), t, nil
	}
	return "", time.Time{}, errorf(ErrAccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
}

// parseAuthorization parses an Authorization header value of the form
// "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
// SignedHeaders=host;x-amz-date, Signature=<64 hex>" (the separators may be
// "," or ", ").
func parseAuthorization(h string) (*signature, error) {
	bad := func(msg string) error { return errorf(ErrAuthorizationHeaderMalformed, msg) }
	if len(h) > maxAuthParam {
		return nil, bad("the authorization header is too long")
	}
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	switch {
	case alg == algorithm:
	case alg == "AWS":
		return nil, errorf(ErrInvalidRequest, "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	default:
		return nil, errorf(ErrInvalidRequest, fmt.Sprintf("unsupported authorization algorithm %q; please use AWS4-HMAC-SHA256", alg))
	}
	var cred, signed, sigHex string
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, bad(fmt.Sprintf("the authorization header is malformed; %q is not a key=value pair", part))
		}
		var i int
		switch k {
		case "Credential":
			i, cred = 0, val
		case "SignedHeaders":
			i, signed = 1, val
		case "Signature":
			i, sigHex = 2, val
		default:
			return nil, bad(fmt.Sprintf("the authorization header is malformed; unknown component %q", k))
		}
		if seen[i] {
			return nil, bad("the authorization header is malformed; repeated " + k)
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return nil, bad("the authorization header is malformed; it needs Credential, SignedHeaders and Signature")
	}
	s := &signature{}
	var err error
	if err = parseCredential(s, cred, ErrAuthorizationHeaderMalformed); err != nil {
		return nil, err
	}
	if s.signedHeaders, err = parseSignedHeaders(signed, ErrAuthorizationHeaderMalformed); err != nil {
		return nil, err
	}
	if s.signature, err = parseSignatureHex(sigHex, ErrAuthorizationHeaderMalformed); err != nil {
		return nil, err
	}
	return s, nil
}

// parsePresign parses the X-Amz-* parameters of a presigned URL.
func parsePresign(q []queryParam) (*signature, error) {
	bad := func(msg string) error { return errorf(ErrAuthorizationQueryParametersError, msg) }
	get := func(name string) (string, error) {
		var v string
		n := 0
		for _, p := range q {
			if p.key == name {
				v = p.value
				n++
			}
		}
		switch {
		case n == 0:
			return "", bad("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; " + name + " is missing.")
		case n > 1:
			return "", bad(name + " is repeated")
		case len(v) > maxAuthParam:
			return "", bad(name + " is too long")
		}
		return v, nil
	}
	var vals [6]string
	for i, name := range [...]string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		v, err := get(name)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	if vals[0] != algorithm {
		return nil, bad("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
	}
	s := &signature{}
	if err := parseCredential(s, vals[1], ErrAuthorizationQueryParametersError); err != nil {
		return nil, err
	}
	if _, err := time.Parse(iso8601, vals[2]); err != nil {
		return nil, bad("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	s.amzDate = vals[2]
	exp, err := strconv.ParseInt(vals[3], 10, 64)
	if err != nil || exp < 0 || vals[3][0] == '+' {
		return nil, bad("X-Amz-Expires should be a number")
	}
	if exp < 1 || exp > int64(MaxPresignExpiry/time.Second) {
		return nil, bad("X-Amz-Expires must be less than a week (in seconds) that is 604800")
	}
	s.expires = time.Duration(exp) * time.Second
	if s.signedHeaders, err = parseSignedHeaders(vals[4], ErrAuthorizationQueryParametersError); err != nil {
		return nil, err
	}
	if s.signature, err = parseSignatureHex(vals[5], ErrAuthorizationQueryParametersError); err != nil {
		return nil, err
	}
	return s, nil
}

// parseCredential parses "AK/yyyymmdd/region/s3/aws4_request" into s. The
// access key is everything before the last four components.
func parseCredential(s *signature, cred string, proto *Error) error {
	parts := strings.Split(cred, "/")
	n := len(parts)
	if n < 5 || parts[n-1] != terminator {
		return errorf(proto, fmt.Sprintf("the Credential %q is malformed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"", cred))
	}
	s.accessKey = strings.Join(parts[:n-4], "/")
	s.date, s.region, s.service = parts[n-4], parts[n-3], parts[n-2]
	if s.accessKey == "" {
		return errorf(proto, "the Credential has an empty access key")
	}
	if _, err := time.Parse(yyyymmdd, s.date); err != nil || len(s.date) != 8 {
		return errorf(proto, fmt.Sprintf("the Credential date %q is not of the form YYYYMMDD", s.date))
	}
	if s.region == "" {
		return errorf(proto, "the Credential has an empty region")
	}
	if s.service != service {
		return errorf(proto, fmt.Sprintf("the Credential service %q is wrong; expecting \"s3\"", s.service))
	}
	return nil
}

// parseSignedHeaders parses "host;range;x-amz-date": lower-case header
// names, none repeated.
func parseSignedHeaders(s string, proto *Error) ([]string, error) {
	if s == "" {
		return nil, errorf(proto, "SignedHeaders is empty")
	}
	names := strings.Split(s, ";")
	if len(names) > 256 {
		return nil, errorf(proto, "too many SignedHeaders")
	}
	for i, name := range names {
		if name == "" || !isToken(name) || name != strings.ToLower(name) {
			return nil, errorf(proto, fmt.Sprintf("SignedHeaders has an invalid name %q", name))
		}
		if slices.Contains(names[:i], name) {
			return nil, errorf(proto, fmt.Sprintf("SignedHeaders repeats %q", name))
		}
	}
	return names, nil
}

func parseSignatureHex(s string, proto *Error) ([]byte, error) {
	if len(s) != 2*sha256.Size {
		return nil, errorf(proto, "the Signature must be 64 hex digits")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errorf(proto, "the Signature must be 64 hex digits")
	}
	return b, nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// queryParam is one decoded name=value pair of a query string.
type queryParam struct{ key, value string }

// parseQuery splits a raw query into decoded pairs, keeping order and
// repetitions ("+" decodes to a space, as every signer encodes a space as
// %20 and a plus as %2B). A parameter without "=" has an empty value.
func parseQuery(raw string) ([]queryParam, error) {
	var q []queryParam
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		v, err = url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		q = append(q, queryParam{k, v})
	}
	return q, nil
}

func hasParam(q []queryParam, key string) bool {
	_, ok := param(q, key)
	return ok
}

func param(q []queryParam, key string) (string, bool) {
	for _, p := range q {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

// canonicalQuery is the canonical query string: every pair (but
// X-Amz-Signature when presigned) URI-encoded, sorted by name then value.
func canonicalQuery(q []queryParam, presign bool) string {
	pairs := make([]string, 0, len(q))
	for _, p := range q {
		if presign && p.key == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, uriEncode(p.key, false)+"="+uriEncode(p.value, false))
	}
	// Sorting "k=v" strings would misorder "a-b=1" against "a=1"; sort by
	// the encoded key, then value.
	slices.SortFunc(pairs, func(a, b string) int {
		ak, av, _ := strings.Cut(a, "=")
		bk, bv, _ := strings.Cut(b, "=")
		if c := strings.Compare(ak, bk); c != 0 {
			return c
		}
		return strings.Compare(av, bv)
	})
	return strings.Join(pairs, "&")
}

// uriEncode percent-encodes every byte of s but the unreserved characters
// A-Z a-z 0-9 - . _ ~ (and "/" when keepSlash), with upper-case hex, as
// SigV4 specifies.
func uriEncode(s string, keepSlash bool) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' && keepSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}

// canonicalURIs returns the canonical URI candidates of r. S3 does not
// double-encode: the canonical URI is the path URI-encoded once. The first
// candidate re-encodes the decoded path (what minio-go, aws-sdk-go-v2 and
// botocore sign); the second, if different, is the path exactly as the
// client sent it, for clients that keep characters encoded differently
// (say "%2F" inside a key). Both bind the signature to the same decoded path.
func canonicalURIs(r *http.Request) []string {
	p := r.URL.Path
	if p == "" {
		p = "/"
	}
	enc := uriEncode(p, true)
	raw := r.URL.EscapedPath()
	if strings.HasPrefix(r.RequestURI, "/") {
		raw, _, _ = strings.Cut(r.RequestURI, "?")
	}
	if raw != "" && raw != enc {
		return []string{enc, raw}
	}
	return []string{enc}
}

// canonicalHeaders is "name:value\n" for every signed header, values
// trimmed, inner runs of spaces collapsed, repeated headers joined by ",".
func canonicalHeaders(r *http.Request, names []string) string {
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(':')
		var vals []string
		switch name {
		case "host":
			h := r.Host
			if h == "" {
				h = r.URL.Host
			}
			vals = []string{h}
		default:
			vals = r.Header.Values(name)
			if len(vals) == 0 && name == "content-length" && r.ContentLength >= 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(trimAll(v))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// trimAll trims leading and trailing white space and collapses inner runs
// of spaces to one.
func trimAll(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && i > 0 && s[i-1] == ' ' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// checkSignature recomputes the signature of r and compares it in constant
// time with the claimed one.
func checkSignature(r *http.Request, q []queryParam, presign bool, sig *signature, amzDate, payload string, key []byte) bool {
	query := canonicalQuery(q, presign)
	headers := canonicalHeaders(r, sig.signedHeaders)
	signed := strings.Join(sig.signedHeaders, ";")
	ok := false
	for _, uri := range canonicalURIs(r) {
		creq := r.Method + "\n" + uri + "\n" + query + "\n" + headers + "\n" + signed + "\n" + payload
		h := sha256.Sum256([]byte(creq))
		sts := algorithm + "\n" + amzDate + "\n" + sig.scope() + "\n" + hex.EncodeToString(h[:])
		if hmac.Equal(hmacSHA256(key, sts), sig.signature) {
			ok = true
		}
	}
	return ok
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey derives the SigV4 signing key.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

// ContentEncoding returns the Content-Encoding of h without the
// "aws-chunked" coding (which this package removes): what an object's
// Content-Encoding is to be.
func ContentEncoding(h http.Header) string {
	var out []string
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			c = strings.TrimSpace(c)
			if c != "" && !strings.EqualFold(c, "aws-chunked") {
				out = append(out, c)
			}
		}
	}
	return strings.Join(out, ",")
}

// decodeBase64Digest decodes a strict, padded base64 digest of size n.
func decodeBase64Digest(s string, n int) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n {
		return nil, errors.New("invalid digest")
	}
	return b, nil
}
