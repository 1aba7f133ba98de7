package keys

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// VaultConfig configures a Vault client: HashiCorp Vault's (or OpenBao's) transit secrets
// engine, logged in to with AppRole. The fields follow MinIO's legacy MINIO_SSE_VAULT_*
// settings (ENDPOINT, APPROLE_ID, APPROLE_SECRET, NAMESPACE, CAPATH).
type VaultConfig struct {
	Endpoint         string        // https://vault:8200 (http allowed only for 127.0.0.1/localhost/::1)
	AppRoleMount     string        // "" = "approle"
	RoleID, SecretID string        // AppRole credentials; never logged nor put into errors
	TransitMount     string        // "" = "transit"
	Namespace        string        // optional (Vault Enterprise / HCP): X-Vault-Namespace
	CAPath           string        // file or dir of PEM CAs; "" = system roots
	Timeout          time.Duration // per request; 0 = 10s
}

// Vault is a KMS backed by Vault's transit secrets engine (MinIO's legacy direct path).
//
// GenerateKey asks transit for a data key (datakey/plaintext) and Decrypt unseals one
// (decrypt); the context is passed as Vault's key-derivation "context", so the external
// key should be created derived (CreateKey does so). A key that was created without
// derived=true makes Vault ignore the context: the DEK is then not bound to it by Vault,
// only by the KEK derivation that ssefs does on top.
//
// Vault logs in with AppRole once at start, renews its token in the background at about
// 2/3 of each lease and logs in again when renewal is refused or the token expires.
// Vault is safe for concurrent use; Close stops the background renewal.
type Vault struct {
	endpoint  string // as configured, without a trailing slash: for messages
	base      url.URL
	loginPath string // "auth/<approle mount>/login"
	transit   string // transit mount, no leading or trailing slash
	namespace string
	roleID    string
	secretID  string
	timeout   time.Duration
	client    *http.Client
	opts      vaultOptions

	mu  sync.Mutex
	tok vaultToken // guarded by mu
	gen uint64     // guarded by mu: the generation of the last token set

	loginMu sync.Mutex // one AppRole login at a time

	kick     chan struct{}      // a login replaced the token: the renewal loop reschedules
	stopCtx  context.Context    // cancelled by Close
	stop     context.CancelFunc //
	loopDone chan struct{}      // closed when the renewal loop has returned
	closed   sync.Once
}

var (
	_ KMS        = (*Vault)(nil)
	_ KeyCreator = (*Vault)(nil)
	_ KeyLister  = (*Vault)(nil)
)

// vaultOptions are the parts tests replace: the renewal schedule, the clock and the log.
type vaultOptions struct {
	// renewAfter returns how long after obtaining a token with the given lease to renew it.
	renewAfter func(lease time.Duration) time.Duration
	// retryAfter returns the wait before the renewal loop tries again after a failure.
	retryAfter func(failures int) time.Duration
	now        func() time.Time
	log        *slog.Logger
}

func defaultVaultOptions() vaultOptions {
	return vaultOptions{
		renewAfter: func(lease time.Duration) time.Duration { return lease * 2 / 3 },
		retryAfter: func(failures int) time.Duration {
			d := time.Second << min(failures-1, 6) // 1s, 2s, ... 64s
			return min(d, time.Minute)
		},
		now: time.Now,
		log: slog.Default(),
	}
}

// vaultToken is the client token of one AppRole login (and its renewals).
type vaultToken struct {
	value     string
	lease     time.Duration // 0: the token does not expire
	renewable bool
	obtained  time.Time     // when the login or renewal that set lease was sent
	loginTTL  time.Duration // the lease the login gave: a much shorter renewal means max TTL
	gen       uint64        // which login this token came from
}

func (t vaultToken) expired(now time.Time) bool {
	return t.value == "" || (t.lease > 0 && !now.Before(t.obtained.Add(t.lease)))
}

const (
	vaultDefaultTimeout = 10 * time.Second
	// vaultMaxBody bounds what is read from one response: transit answers are small.
	vaultMaxBody = 1 << 20
	// vaultMaxLease bounds a lease_duration from the server, so time arithmetic cannot overflow.
	vaultMaxLease = 10 * 365 * 24 * time.Hour
	// vaultMaxMessage bounds how much of a Vault error message goes into an error.
	vaultMaxMessage = 512
)

// vaultNameRE is Vault's framework.GenericNameRegex, which transit key names must match.
var vaultNameRE = regexp.MustCompile(`^\w(?:[\w\-.]*\w)?$`)

// vaultMountRE accepts mount paths such as "transit" or "kms/transit" (validMount also
// refuses "." and ".." segments).
var vaultMountRE = regexp.MustCompile(`^[\w\-.]+(?:/[\w\-.]+)*$`)

func validMount(m string) bool {
	if !vaultMountRE.MatchString(m) {
		return false
	}
	for _, seg := range strings.Split(m, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// NewVault checks cfg, logs in with AppRole once (so that a wrong endpoint, CA or
// credentials fail at start with a clear message) and starts the token renewal.
func NewVault(ctx context.Context, cfg VaultConfig) (*Vault, error) {
	return newVault(ctx, cfg, defaultVaultOptions())
}

func newVault(ctx context.Context, cfg VaultConfig, opts vaultOptions) (*Vault, error) {
	v, err := newVaultClient(cfg, opts)
	if err != nil {
		return nil, err
	}
	if _, _, err := v.login(ctx, 0); err != nil {
		v.client.CloseIdleConnections()
		return nil, err
	}
	v.stopCtx, v.stop = context.WithCancel(context.Background())
	go v.renewLoop()
	return v, nil
}

// newVaultClient validates cfg and builds the client without contacting Vault.
func newVaultClient(cfg VaultConfig, opts vaultOptions) (*Vault, error) {
	base, err := parseVaultEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	fail := func(format string, args ...any) error {
		return fmt.Errorf("keys: vault %s: "+format, append([]any{endpoint}, args...)...)
	}

	approle := strings.Trim(cfg.AppRoleMount, "/")
	if approle == "" {
		approle = "approle"
	}
	if !validMount(approle) {
		return nil, fail("invalid AppRole mount %q", cfg.AppRoleMount)
	}
	transit := strings.Trim(cfg.TransitMount, "/")
	if transit == "" {
		transit = "transit"
	}
	if !validMount(transit) {
		return nil, fail("invalid transit mount %q", cfg.TransitMount)
	}
	if ns := cfg.Namespace; ns != "" && (!utf8.ValidString(ns) || strings.IndexFunc(ns, isControlOrSpace) >= 0) {
		return nil, fail("invalid namespace %q", ns)
	}
	// Neither credential is quoted: a role ID and secret ID given the wrong way round
	// would put the secret into a log.
	switch {
	case cfg.RoleID == "":
		return nil, fail("no AppRole role ID")
	case cfg.SecretID == "":
		return nil, fail("no AppRole secret ID")
	case !validHeaderValue(cfg.RoleID) || !utf8.ValidString(cfg.RoleID):
		return nil, fail("the AppRole role ID contains control characters or invalid UTF-8")
	case !validHeaderValue(cfg.SecretID) || !utf8.ValidString(cfg.SecretID):
		return nil, fail("the AppRole secret ID contains control characters or invalid UTF-8")
	}
	timeout := cfg.Timeout
	if timeout < 0 {
		return nil, fail("negative timeout %v", timeout)
	}
	if timeout == 0 {
		timeout = vaultDefaultTimeout
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAPath != "" {
		pool, err := loadVaultCAs(cfg.CAPath)
		if err != nil {
			return nil, fail("%w", err)
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.ResponseHeaderTimeout = timeout
	// Keep a connection per concurrent caller: the default of 2 idle connections would
	// make every burst of KMS calls pay for new TLS handshakes.
	transport.MaxIdleConnsPerHost = 32
	client := &http.Client{
		Transport: transport,
		// A standby Vault node redirects to the active one (307). Follow only to https
		// (or to loopback), so the token never travels in clear text.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" && !(req.URL.Scheme == "http" && isLoopbackHost(req.URL.Hostname())) {
				return fmt.Errorf("refusing redirect to %s://%s", req.URL.Scheme, req.URL.Host)
			}
			return nil
		},
	}

	return &Vault{
		endpoint:  endpoint,
		base:      *base,
		loginPath: "auth/" + approle + "/login",
		transit:   transit,
		namespace: cfg.Namespace,
		roleID:    cfg.RoleID,
		secretID:  cfg.SecretID,
		timeout:   timeout,
		client:    client,
		opts:      opts,
		kick:      make(chan struct{}, 1),
		loopDone:  make(chan struct{}),
	}, nil
}

// parseVaultEndpoint accepts https://host[:port][/prefix], and http:// only on loopback.
func parseVaultEndpoint(endpoint string) (*url.URL, error) {
	if endpoint == "" {
		return nil, errors.New("keys: vault: no endpoint")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("keys: vault: invalid endpoint %q", endpoint)
	}
	switch {
	case u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("keys: vault: endpoint %q: want https://host:port", endpoint)
	case u.User != nil:
		// Not quoted: it holds a password.
		return nil, errors.New("keys: vault: the endpoint must not contain a user name or password")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("keys: vault: endpoint %q must not have a query or fragment", endpoint)
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !isLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("keys: vault: endpoint %q: http:// is allowed only on loopback (127.0.0.1, localhost, ::1); use https://", endpoint)
		}
	default:
		return nil, fmt.Errorf("keys: vault: endpoint %q: scheme must be https", endpoint)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadVaultCAs reads the PEM certificates of a file, or of every regular file in a
// directory (files without certificates are skipped, as in a CA bundle directory).
func loadVaultCAs(caPath string) (*x509.CertPool, error) {
	fi, err := os.Stat(caPath)
	if err != nil {
		return nil, fmt.Errorf("CA path: %w", err)
	}
	files := []string{caPath}
	if fi.IsDir() {
		entries, err := os.ReadDir(caPath)
		if err != nil {
			return nil, fmt.Errorf("CA path: %w", err)
		}
		files = files[:0]
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(caPath, e.Name())
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() { // follows symlinks
				files = append(files, p)
			}
		}
	}
	pool := x509.NewCertPool()
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("CA path: %w", err)
		}
		for len(data) > 0 {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("CA path: %s: %w", f, err)
			}
			pool.AddCert(cert)
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("CA path %s: no PEM certificate found", caPath)
	}
	return pool, nil
}

// Close stops the token renewal and waits for it. Calls after Close fail.
func (v *Vault) Close() error {
	v.closed.Do(func() {
		v.stop()
		<-v.loopDone
		v.client.CloseIdleConnections()
	})
	return nil
}

// GenerateKey returns a fresh 32-byte data key from transit's datakey/plaintext,
// sealed under the transit key name and bound to kctx.
func (v *Vault) GenerateKey(ctx context.Context, name string, kctx Context) (DEK, error) {
	c := vaultCall{op: "generate data key", key: name, method: http.MethodPost,
		path: v.transit + "/datakey/plaintext/" + url.PathEscape(name)}
	if !vaultNameRE.MatchString(name) {
		return DEK{}, v.invalidName(c)
	}
	vctx, err := vaultContext(kctx)
	if err != nil {
		return DEK{}, v.errorf(c, "%w", err)
	}
	c.body = map[string]any{"context": vctx, "bits": 256}
	var out struct {
		Data struct {
			Plaintext  []byte `json:"plaintext"` // base64 in JSON
			Ciphertext string `json:"ciphertext"`
		} `json:"data"`
	}
	if err := v.do(ctx, c, &out); err != nil {
		return DEK{}, err
	}
	if len(out.Data.Plaintext) != 32 || !isVaultCiphertext(out.Data.Ciphertext) {
		clear(out.Data.Plaintext)
		return DEK{}, v.errorf(c, "malformed response: want a 32-byte plaintext and a vault:v ciphertext")
	}
	return DEK{KeyName: name, Plaintext: out.Data.Plaintext, Ciphertext: []byte(out.Data.Ciphertext)}, nil
}

// Decrypt unseals a ciphertext ("vault:v1:...") that GenerateKey returned for name and kctx.
func (v *Vault) Decrypt(ctx context.Context, name string, ciphertext []byte, kctx Context) ([]byte, error) {
	c := vaultCall{op: "decrypt", key: name, method: http.MethodPost, decrypt: true,
		path: v.transit + "/decrypt/" + url.PathEscape(name)}
	if !vaultNameRE.MatchString(name) {
		return nil, v.invalidName(c)
	}
	if !isVaultCiphertext(string(ciphertext)) {
		return nil, v.errorf(c, "not a Vault transit ciphertext: %w", ErrDecrypt)
	}
	vctx, err := vaultContext(kctx)
	if err != nil {
		return nil, v.errorf(c, "%w", err)
	}
	c.body = map[string]any{"ciphertext": string(ciphertext), "context": vctx}
	var out struct {
		Data struct {
			Plaintext []byte `json:"plaintext"`
		} `json:"data"`
	}
	if err := v.do(ctx, c, &out); err != nil {
		return nil, err
	}
	if len(out.Data.Plaintext) != 32 {
		clear(out.Data.Plaintext)
		return nil, v.errorf(c, "plaintext is %d bytes, not a 32-byte data key: %w", len(out.Data.Plaintext), ErrDecrypt)
	}
	return out.Data.Plaintext, nil
}

// CreateKey creates a derived aes256-gcm96 transit key. Vault's create is idempotent,
// so the key is read first: an existing key is ErrKeyExists. (Two concurrent creates of
// the same name may both succeed.)
func (v *Vault) CreateKey(ctx context.Context, name string) error {
	c := vaultCall{op: "create key", key: name, method: http.MethodGet,
		path: v.transit + "/keys/" + url.PathEscape(name)}
	if !vaultNameRE.MatchString(name) {
		return v.errorf(c, "invalid name: transit key names are letters, digits, '_', '-' and '.', starting and ending with a letter, digit or '_'")
	}
	switch err := v.do(ctx, c, nil); {
	case err == nil:
		return v.errorf(c, "%w", ErrKeyExists)
	case !errors.Is(err, ErrKeyNotFound):
		return err
	}
	c.method = http.MethodPost
	c.body = map[string]any{"type": "aes256-gcm96", "derived": true}
	return v.do(ctx, c, nil)
}

// ListKeys returns the sorted names of the transit keys that match the glob pattern
// (path.Match; "" or "*" for all).
func (v *Vault) ListKeys(ctx context.Context, pattern string) ([]string, error) {
	if pattern == "" {
		pattern = "*"
	}
	c := vaultCall{op: "list keys", method: http.MethodGet, path: v.transit + "/keys", list: true}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, v.errorf(c, "pattern %q: %w", pattern, err)
	}
	var out struct {
		Data struct {
			Keys []string `json:"keys"`
		} `json:"data"`
	}
	if err := v.do(ctx, c, &out); err != nil {
		// Vault answers a LIST of nothing with 404 and no message.
		if se := (*vaultStatusError)(nil); errors.As(err, &se) && se.status == http.StatusNotFound && se.vault && len(se.msgs) == 0 {
			return []string{}, nil
		}
		return nil, err
	}
	names := []string{}
	for _, k := range out.Data.Keys {
		if ok, _ := path.Match(pattern, k); ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names, nil
}

// vaultContext encodes kctx as Vault's "context": base64 of its JSON with the keys
// sorted (encoding/json sorts map keys) and without HTML escaping, so the same context
// is always the same bytes. Invalid UTF-8 is refused: JSON would turn it into U+FFFD and
// two different contexts could then derive the same key.
func vaultContext(kctx Context) (string, error) {
	for k, val := range kctx {
		if !utf8.ValidString(k) || !utf8.ValidString(val) {
			return "", errors.New("the key context is not valid UTF-8")
		}
	}
	if kctx == nil {
		kctx = Context{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]string(kctx)); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// isVaultCiphertext accepts transit's "vault:v<N>:<base64>" form, in printable ASCII.
func isVaultCiphertext(s string) bool {
	if !strings.HasPrefix(s, "vault:v") || len(s) > vaultMaxBody {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// vaultCall is one request to Vault.
type vaultCall struct {
	op      string // for messages: "decrypt"
	key     string // transit key name, "" if none
	method  string
	path    string // after /v1/, escaped
	list    bool   // add ?list=true (Vault's LIST as a GET)
	body    any    // JSON; nil for none
	decrypt bool   // a 400 is a failed unseal
}

// vaultStatusError is a non-2xx answer. Its Error text is already redacted.
type vaultStatusError struct {
	status int
	vault  bool     // the body was Vault's {"errors":[...]} (not, say, a proxy's page)
	msgs   []string // redacted, sanitised
}

func (e *vaultStatusError) Error() string {
	if len(e.msgs) == 0 {
		return fmt.Sprintf("HTTP %d", e.status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, strings.Join(e.msgs, "; "))
}

func (e *vaultStatusError) contains(s string) bool {
	for _, m := range e.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// do sends c with the current token and decodes a 2xx body into out. A 403 with a token
// that this call did not log in for may mean the token expired or was revoked: the call
// logs in (or takes the token that another caller has just logged in for) and tries
// again. A 403 with a token from the call's own fresh login is the policy's
// (ErrForbidden). So a call makes at most one login of its own and three requests.
func (v *Vault) do(ctx context.Context, c vaultCall, out any) error {
	if v.stopCtx != nil && v.stopCtx.Err() != nil {
		return v.errorf(c, "client closed: %w", ErrUnavailable)
	}
	tok, own, err := v.validToken(ctx)
	if err != nil {
		return err
	}
	var status int
	var body []byte
	for attempt := 1; ; attempt++ {
		status, body, err = v.roundTrip(ctx, c, tok.value)
		if err != nil || status != http.StatusForbidden || own || attempt == 3 {
			break
		}
		clear(body)
		if tok, own, err = v.login(ctx, tok.gen); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	defer clear(body) // it may hold key material
	if status < 200 || status > 299 {
		return v.statusError(c, status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			// Not the json error itself: it may quote a piece of the (secret) body.
			return v.errorf(c, "malformed JSON response (HTTP %d)", status)
		}
	}
	return nil
}

// statusError turns a non-2xx answer into an error with the matching sentinel.
func (v *Vault) statusError(c vaultCall, status int, body []byte) error {
	msgs, isVault := v.errorMessages(body)
	se := &vaultStatusError{status: status, vault: isVault, msgs: msgs}
	var kind error
	switch {
	case status == http.StatusForbidden:
		kind = ErrForbidden
	case status == http.StatusTooManyRequests || status == http.StatusPreconditionFailed ||
		status == http.StatusBadGateway || status >= 500:
		kind = ErrUnavailable // 503 also when sealed or in standby without a leader
	case c.key != "" && (status == http.StatusNotFound || se.contains("encryption key not found")):
		kind = ErrKeyNotFound
	case c.decrypt && status == http.StatusBadRequest:
		kind = ErrDecrypt // cipher: message authentication failed, bad context, bad ciphertext
	}
	if kind == nil {
		return v.errorf(c, "%w", se)
	}
	return v.errorf(c, "%w: %w", se, kind)
}

// errorMessages decodes Vault's {"errors":[...]} body, sanitised and with the
// credentials and tokens redacted (AppRole echoes an invalid secret_id).
func (v *Vault) errorMessages(body []byte) (msgs []string, isVault bool) {
	var e struct {
		Errors *[]string `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || e.Errors == nil {
		return nil, false // not Vault's answer (a proxy's page): the status tells enough
	}
	secrets := []string{v.secretID, v.roleID}
	v.mu.Lock()
	secrets = append(secrets, v.tok.value)
	v.mu.Unlock()
	total := 0
	for _, m := range *e.Errors {
		m = sanitizeVaultMessage(m, secrets)
		if m == "" {
			continue
		}
		if total += len(m); total > vaultMaxMessage {
			msgs = append(msgs, "...")
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, true
}

// sanitizeVaultMessage makes a server message fit for an error: valid UTF-8, one line,
// no secret, bounded. Vault's multierror text ("2 errors occurred:\n\t* permission
// denied\n\t* invalid token\n\n") becomes "permission denied, invalid token".
func sanitizeVaultMessage(m string, secrets []string) string {
	m = strings.ToValidUTF8(m, "?")
	if strings.Contains(m, "\n\t* ") {
		var parts []string
		for _, line := range strings.Split(m, "\n") {
			if p, ok := strings.CutPrefix(line, "\t* "); ok {
				parts = append(parts, p)
			}
		}
		m = strings.Join(parts, ", ")
	}
	m = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, m)
	m = strings.Join(strings.Fields(m), " ")
	// Redact after the clean-up, so that no control character or line break can hide a
	// secret from the replacement and then vanish. A redaction cannot create a secret
	// that was not there before: repeat until stable to cover overlaps.
	for changed := true; changed; {
		changed = false
		for _, s := range secrets {
			if s != "" && strings.Contains(m, s) {
				m = strings.ReplaceAll(m, s, "<redacted>")
				changed = true
			}
		}
	}
	if len(m) > vaultMaxMessage {
		m = strings.ToValidUTF8(m[:vaultMaxMessage], "") + "..."
	}
	return m
}

// errorf formats an error about c: it names the endpoint and the key, never a secret.
func (v *Vault) errorf(c vaultCall, format string, args ...any) error {
	prefix := "keys: vault " + v.endpoint + ": " + c.op
	if c.key != "" {
		prefix += fmt.Sprintf(" with key %q", c.key)
	}
	return fmt.Errorf(prefix+": "+format, args...)
}

func (v *Vault) invalidName(c vaultCall) error {
	return v.errorf(c, "invalid transit key name: %w", ErrKeyNotFound)
}

// roundTrip sends one request and reads its answer. Transport failures come back as
// errors (ErrUnavailable, or the caller's context error); any HTTP status as status.
func (v *Vault) roundTrip(ctx context.Context, c vaultCall, token string) (int, []byte, error) {
	// c.path holds escaped segments already: build the URL by hand so they are not
	// escaped twice.
	target := v.base.Scheme + "://" + v.base.Host + v.base.EscapedPath() + "/v1/" + c.path
	if c.list {
		target += "?list=true"
	}

	var body []byte
	if c.body != nil {
		var err error
		if body, err = json.Marshal(c.body); err != nil {
			return 0, nil, v.errorf(c, "encoding request: %w", err)
		}
		defer clear(body) // the login body holds the secret ID
	}
	rctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, c.method, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, v.errorf(c, "building request: %v", err)
	}
	if c.body == nil {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Vault-Request", "true")
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if v.namespace != "" {
		req.Header.Set("X-Vault-Namespace", v.namespace)
	}

	resp, err := v.client.Do(req)
	if err != nil {
		return 0, nil, v.transportError(ctx, c, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, vaultMaxBody+1))
	if err != nil {
		clear(data)
		return 0, nil, v.transportError(ctx, c, err)
	}
	if ctx.Err() != nil { // the caller gave up while the answer came in
		clear(data)
		return 0, nil, v.errorf(c, "%w", context.Cause(ctx))
	}
	if len(data) > vaultMaxBody {
		clear(data)
		return 0, nil, v.errorf(c, "response larger than %d bytes", vaultMaxBody)
	}
	return resp.StatusCode, data, nil
}

// transportError classifies a failure to get an answer: the caller giving up stays a
// context error (so a shared cache fetch can be retried under another context);
// anything else, this client's own timeout included, is ErrUnavailable.
func (v *Vault) transportError(ctx context.Context, c vaultCall, err error) error {
	if ctx.Err() != nil {
		return v.errorf(c, "%w", context.Cause(ctx))
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // its text repeats the method and URL
	}
	var cverr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &cverr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		return v.errorf(c, "TLS: the server's certificate is not trusted (check the CA path and the endpoint's host name): %v: %w: %w", err, ErrUnavailable, ErrServerUntrusted)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return v.errorf(c, "no answer within %v: %w", v.timeout, ErrUnavailable)
	}
	return v.errorf(c, "%v: %w", err, ErrUnavailable)
}

// current returns the token in use.
func (v *Vault) current() vaultToken {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tok
}

// validToken returns the current token, logging in first if it has expired; own tells
// whether this call logged in.
func (v *Vault) validToken(ctx context.Context) (t vaultToken, own bool, err error) {
	t = v.current()
	if t.expired(v.opts.now()) {
		return v.login(ctx, t.gen)
	}
	return t, false, nil
}

// login replaces the token of generation stale by a fresh AppRole login (own). If
// another caller already replaced it, that token is returned without a second login.
func (v *Vault) login(ctx context.Context, stale uint64) (_ vaultToken, own bool, _ error) {
	v.loginMu.Lock()
	defer v.loginMu.Unlock()
	if t := v.current(); t.gen != stale && !t.expired(v.opts.now()) {
		return t, false, nil
	}
	c := vaultCall{op: "AppRole login", method: http.MethodPost, path: v.loginPath,
		body: map[string]string{"role_id": v.roleID, "secret_id": v.secretID}}
	sent := v.opts.now()
	status, body, err := v.roundTrip(ctx, c, "")
	if err != nil {
		return vaultToken{}, false, err
	}
	defer clear(body)
	if status < 200 || status > 299 {
		msgs, isVault := v.errorMessages(body)
		se := &vaultStatusError{status: status, vault: isVault, msgs: msgs}
		switch {
		case status == http.StatusTooManyRequests || status == http.StatusPreconditionFailed ||
			status == http.StatusBadGateway || status >= 500:
			return vaultToken{}, false, v.errorf(c, "%w: %w", se, ErrUnavailable)
		case status == http.StatusNotFound:
			return vaultToken{}, false, v.errorf(c, "%w (is AppRole enabled at this mount?): %w", se, ErrIdentityRejected)
		default: // 400 invalid role or secret ID, 403 CIDR or policy, ...
			return vaultToken{}, false, v.errorf(c, "%w: %w", se, ErrIdentityRejected)
		}
	}
	a, err := decodeVaultAuth(body)
	if err != nil {
		return vaultToken{}, false, v.errorf(c, "%v", err)
	}
	v.mu.Lock()
	v.gen++
	t := vaultToken{value: a.ClientToken, lease: a.lease(), renewable: a.Renewable,
		obtained: sent, gen: v.gen}
	t.loginTTL = t.lease
	v.tok = t
	v.mu.Unlock()
	select {
	case v.kick <- struct{}{}:
	default:
	}
	return t, true, nil
}

type vaultAuth struct {
	ClientToken   string `json:"client_token"`
	LeaseDuration int64  `json:"lease_duration"` // seconds
	Renewable     bool   `json:"renewable"`
}

func (a vaultAuth) lease() time.Duration {
	if a.LeaseDuration <= 0 {
		return 0
	}
	return time.Duration(min(a.LeaseDuration, int64(vaultMaxLease/time.Second))) * time.Second
}

// decodeVaultAuth reads the "auth" block of a login or renew-self answer.
func decodeVaultAuth(body []byte) (vaultAuth, error) {
	var r struct {
		Auth *vaultAuth `json:"auth"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return vaultAuth{}, errors.New("malformed JSON in the auth response")
	}
	if r.Auth == nil || r.Auth.ClientToken == "" {
		return vaultAuth{}, errors.New("the auth response has no client token")
	}
	if !validHeaderValue(r.Auth.ClientToken) {
		return vaultAuth{}, errors.New("the auth response has a malformed client token")
	}
	return *r.Auth, nil
}

// validHeaderValue reports whether s can be sent as an HTTP header value unchanged.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

func isControlOrSpace(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }

// renewLoop keeps the token alive until Close: renew-self at renewAfter(lease) while the
// token is renewable, otherwise (or when renewal fails or is capped by the token's
// max TTL) a fresh login. After a failure it tries again with a growing back-off;
// requests meanwhile log in by themselves once the token has expired.
func (v *Vault) renewLoop() {
	defer close(v.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	failures := 0
	for {
		t := v.current()
		var fire <-chan time.Time
		switch {
		case failures > 0:
			timer.Reset(v.opts.retryAfter(failures))
			fire = timer.C
		case t.lease > 0:
			timer.Reset(max(0, v.opts.renewAfter(t.lease)-v.opts.now().Sub(t.obtained)))
			fire = timer.C
		}
		select {
		case <-v.stopCtx.Done():
			return
		case <-v.kick:
			timer.Stop()
			failures = 0
			continue
		case <-fire:
		}
		if err := v.refresh(v.stopCtx, t); err != nil {
			if v.stopCtx.Err() != nil {
				return
			}
			failures++
			v.opts.log.Warn("vault: cannot refresh the token; will try again",
				"endpoint", v.endpoint, "failures", failures, "err", err)
			continue
		}
		failures = 0
	}
}

// refresh renews t, or replaces it by a fresh login.
func (v *Vault) refresh(ctx context.Context, t vaultToken) error {
	if t.renewable && !t.expired(v.opts.now()) {
		nt, err := v.renewSelf(ctx, t)
		switch {
		case err == nil && (nt.lease == 0 || nt.lease >= t.loginTTL/2):
			v.mu.Lock()
			if v.tok.gen == t.gen {
				v.tok.value, v.tok.lease, v.tok.renewable, v.tok.obtained = nt.value, nt.lease, nt.renewable, nt.obtained
			}
			v.mu.Unlock()
			return nil
		case err == nil:
			v.opts.log.Debug("vault: token renewal capped by its max TTL; logging in again", "endpoint", v.endpoint)
		case ctx.Err() != nil:
			return err
		default:
			v.opts.log.Info("vault: token renewal failed; logging in again", "endpoint", v.endpoint, "err", err)
		}
	}
	_, _, err := v.login(ctx, t.gen)
	return err
}

// renewSelf asks Vault to extend the lease of t (auth/token/renew-self).
func (v *Vault) renewSelf(ctx context.Context, t vaultToken) (vaultToken, error) {
	c := vaultCall{op: "token renewal", method: http.MethodPost, path: "auth/token/renew-self",
		body: map[string]any{}}
	sent := v.opts.now()
	status, body, err := v.roundTrip(ctx, c, t.value)
	if err != nil {
		return vaultToken{}, err
	}
	defer clear(body)
	if status < 200 || status > 299 {
		return vaultToken{}, v.statusError(c, status, body)
	}
	a, err := decodeVaultAuth(body)
	if err != nil {
		return vaultToken{}, v.errorf(c, "%v", err)
	}
	return vaultToken{value: a.ClientToken, lease: a.lease(), renewable: a.Renewable, obtained: sent}, nil
}
