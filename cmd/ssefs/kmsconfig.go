package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ssefs/ssefs/keys"
)

// Which KMS seals the keys: exactly one of KES, Vault transit, a static master key given to
// the process, or (nothing configured) a master key generated into the data directory.
const (
	kindKES       = "kes"
	kindVault     = "vault"
	kindStatic    = "static"
	kindGenerated = "generated"
)

// The KMS flags. Each is also read from SSEFS_<FLAG> (flagsFromEnv), and where MinIO has a
// name for the setting, from that too, below the SSEFS_* one.
const (
	flagKESEndpoint       = "kms-kes-endpoint"
	flagKESKeyFile        = "kms-kes-key-file"
	flagKESCertFile       = "kms-kes-cert-file"
	flagKESCAPath         = "kms-kes-ca-path"
	flagKESKeyName        = "kms-kes-key-name"
	flagKESEnclave        = "kms-kes-enclave"
	flagVaultEndpoint     = "kms-vault-endpoint"
	flagVaultRoleID       = "kms-vault-approle-id"
	flagVaultRoleIDFile   = "kms-vault-approle-id-file"
	flagVaultSecret       = "kms-vault-approle-secret"
	flagVaultSecretFile   = "kms-vault-approle-secret-file"
	flagVaultApproleMount = "kms-vault-approle-mount"
	flagVaultTransitMount = "kms-vault-transit-mount"
	flagVaultKeyName      = "kms-vault-key-name"
	flagVaultNamespace    = "kms-vault-namespace"
	flagVaultCAPath       = "kms-vault-ca-path"
	flagKMSTimeout        = "kms-timeout"
	flagMasterKeyFile     = "master-key-file"
)

// MinIO's names for the same settings (MinIO's server docs and its internal/config), so a
// MinIO setup can be reused as it is. MinIO spells the KES CA variable MINIO_KMS_KES_CAPATH;
// the _CA_PATH spelling is accepted too. Vault's variables had two generations in MinIO:
// MINIO_SSE_VAULT_* and, later, MINIO_KMS_VAULT_*.
var (
	minioKESEndpoint     = []string{"MINIO_KMS_KES_ENDPOINT"}
	minioKESKeyFile      = []string{"MINIO_KMS_KES_KEY_FILE"}
	minioKESCertFile     = []string{"MINIO_KMS_KES_CERT_FILE"}
	minioKESCAPath       = []string{"MINIO_KMS_KES_CAPATH", "MINIO_KMS_KES_CA_PATH"}
	minioKESKeyName      = []string{"MINIO_KMS_KES_KEY_NAME"}
	minioKESEnclave      = []string{"MINIO_KMS_KES_ENCLAVE"}
	minioKESAPIKey       = []string{"MINIO_KMS_KES_API_KEY"}
	minioKESKeyPassword  = []string{"MINIO_KMS_KES_KEY_PASSWORD"}
	minioVaultEndpoint   = []string{"MINIO_SSE_VAULT_ENDPOINT", "MINIO_KMS_VAULT_ENDPOINT"}
	minioVaultAuthType   = []string{"MINIO_SSE_VAULT_AUTH_TYPE", "MINIO_KMS_VAULT_AUTH_TYPE"}
	minioVaultRoleID     = []string{"MINIO_SSE_VAULT_APPROLE_ID", "MINIO_KMS_VAULT_APPROLE_ID"}
	minioVaultSecret     = []string{"MINIO_SSE_VAULT_APPROLE_SECRET", "MINIO_KMS_VAULT_APPROLE_SECRET"}
	minioVaultKeyName    = []string{"MINIO_SSE_VAULT_KEY_NAME", "MINIO_KMS_VAULT_KEY_NAME"}
	minioVaultNamespace  = []string{"MINIO_SSE_VAULT_NAMESPACE", "MINIO_KMS_VAULT_NAMESPACE"}
	minioVaultCAPath     = []string{"MINIO_SSE_VAULT_CAPATH", "MINIO_KMS_VAULT_CAPATH"}
	minioMasterKey       = "MINIO_KMS_MASTER_KEY"
	minioMasterKeyFile   = "MINIO_KMS_MASTER_KEY_FILE"
	ssefsMasterKey       = "SSEFS_KMS_MASTER_KEY"
	ssefsMasterKeyFile   = "SSEFS_KMS_MASTER_KEY_FILE"
	defaultKMSTimeout    = 10 * time.Second
	defaultApproleMount  = "approle"
	defaultTransitMount  = "transit"
	kesEndpointExample   = "https://HOST:7373"
	vaultEndpointExample = "https://HOST:8200"
)

// kmsConfig is the KMS part of a command's flags; resolve turns it, with the environment,
// into one kmsSettings, and open into a working KMS.
type kmsConfig struct {
	f *pflag.FlagSet

	kesEndpoints []string
	kesKeyFile   string
	kesCertFile  string
	kesCAPath    string
	kesKeyName   string
	kesEnclave   string

	vaultEndpoint     string
	vaultRoleID       string
	vaultRoleIDFile   string
	vaultSecret       string
	vaultSecretFile   string
	vaultApproleMount string
	vaultTransitMount string
	vaultKeyName      string
	vaultNamespace    string
	vaultCAPath       string

	timeout       time.Duration
	masterKeyFile string

	// noGenerate keeps commands other than mount from generating a master key: only the
	// first mount of a data directory may create one.
	noGenerate bool
	// defaultKeyOptional: the command names its key itself (key create, list, status),
	// so a KES or Vault setup without a default key name is complete for it.
	defaultKeyOptional bool

	res *kmsSettings
}

// addKMSFlags registers the KMS flags on a command's flag set.
func addKMSFlags(f *pflag.FlagSet) *kmsConfig {
	c := &kmsConfig{f: f}
	f.StringSliceVar(&c.kesEndpoints, flagKESEndpoint, nil, "KES server URL(s), https:// (comma-separated or repeated; also MINIO_KMS_KES_ENDPOINT)")
	f.StringVar(&c.kesKeyFile, flagKESKeyFile, "", "private key of ssefs' KES client certificate (also MINIO_KMS_KES_KEY_FILE)")
	f.StringVar(&c.kesCertFile, flagKESCertFile, "", "ssefs' KES client certificate (also MINIO_KMS_KES_CERT_FILE)")
	f.StringVar(&c.kesCAPath, flagKESCAPath, "", "CA certificate file or directory to verify a self-signed KES server (also MINIO_KMS_KES_CAPATH)")
	f.StringVar(&c.kesKeyName, flagKESKeyName, "", "KES key that seals new files by default (also MINIO_KMS_KES_KEY_NAME)")
	f.StringVar(&c.kesEnclave, flagKESEnclave, "", "KES enclave, for servers older than KES v0.23 (also MINIO_KMS_KES_ENCLAVE)")
	f.StringVar(&c.vaultEndpoint, flagVaultEndpoint, "", "Vault URL, to use Vault transit directly (also MINIO_SSE_VAULT_ENDPOINT)")
	f.StringVar(&c.vaultRoleID, flagVaultRoleID, "", "Vault AppRole role ID (also MINIO_SSE_VAULT_APPROLE_ID)")
	f.StringVar(&c.vaultRoleIDFile, flagVaultRoleIDFile, "", "file holding the Vault AppRole role ID")
	f.StringVar(&c.vaultSecret, flagVaultSecret, "", "Vault AppRole secret ID: prefer the -file flag or SSEFS_KMS_VAULT_APPROLE_SECRET (also MINIO_SSE_VAULT_APPROLE_SECRET)")
	f.StringVar(&c.vaultSecretFile, flagVaultSecretFile, "", "file holding the Vault AppRole secret ID")
	f.StringVar(&c.vaultApproleMount, flagVaultApproleMount, defaultApproleMount, "path where Vault's AppRole auth method is mounted")
	f.StringVar(&c.vaultTransitMount, flagVaultTransitMount, defaultTransitMount, "path where Vault's transit engine is mounted")
	f.StringVar(&c.vaultKeyName, flagVaultKeyName, "", "Vault transit key that seals new files by default (also MINIO_SSE_VAULT_KEY_NAME)")
	f.StringVar(&c.vaultNamespace, flagVaultNamespace, "", "Vault Enterprise namespace (also MINIO_SSE_VAULT_NAMESPACE)")
	f.StringVar(&c.vaultCAPath, flagVaultCAPath, "", "CA certificate file or directory to verify the Vault server (also MINIO_SSE_VAULT_CAPATH)")
	f.DurationVar(&c.timeout, flagKMSTimeout, defaultKMSTimeout, "timeout of one request to KES or Vault")
	f.StringVar(&c.masterKeyFile, flagMasterKeyFile, "", "file holding the static master key NAME:64-hex-digits (also SSEFS_KMS_MASTER_KEY_FILE, MINIO_KMS_MASTER_KEY_FILE)")
	return c
}

// kmsUsage explains the KMS settings in every command's help.
const kmsUsage = `KMS (one of):
  KES          --kms-kes-endpoint, --kms-kes-cert-file, --kms-kes-key-file, --kms-kes-key-name
               [--kms-kes-ca-path] [--kms-kes-enclave]; or MINIO_KMS_KES_ENDPOINT, _CERT_FILE,
               _KEY_FILE, _KEY_NAME, _CAPATH, _ENCLAVE
  Vault        --kms-vault-endpoint, --kms-vault-key-name, the AppRole role ID and secret ID
               (SSEFS_KMS_VAULT_APPROLE_ID / _SECRET, their _FILE forms, or MINIO_SSE_VAULT_*)
  master key   SSEFS_KMS_MASTER_KEY=NAME:64-hex, SSEFS_KMS_MASTER_KEY_FILE, --master-key-file
               (or MINIO_KMS_MASTER_KEY, MINIO_KMS_MASTER_KEY_FILE)
  nothing      a master key generated into the data directory: for trying ssefs out only
Every flag is also read from SSEFS_<FLAG> (e.g. SSEFS_KMS_KES_ENDPOINT); the command line
wins over SSEFS_*, SSEFS_* over MinIO's variables.
`

// setting is one resolved value and where it came from ("--flag", "SSEFS_X", "MINIO_X",
// "SSEFS_X_FILE=/path"); source "" means not set.
type setting struct{ value, source string }

func (s setting) set() bool { return s.source != "" }

func (s setting) or(def string) string {
	if s.set() {
		return s.value
	}
	return def
}

// kmsSettings is the one KMS a command uses, with every value's source for messages.
type kmsSettings struct {
	kind    string
	timeout time.Duration

	kesEndpoints []string
	kesEndpoint  setting // source of the endpoint list; value is the raw list
	kesKeyFile   setting
	kesCertFile  setting
	kesCAPath    setting
	kesKeyName   setting
	kesEnclave   setting

	vaultEndpoint     setting
	vaultRoleID       setting // the ID itself; source names the variable or file
	vaultSecret       setting // the secret itself: never print value
	vaultApproleMount string
	vaultTransitMount string
	vaultKeyName      setting
	vaultNamespace    setting
	vaultCAPath       setting

	master       setting // the key string, or the path when masterIsFile
	masterIsFile bool
}

// lookup resolves a plain setting: its flag (command line, then SSEFS_<FLAG>), then
// MinIO's variables in order.
func (c *kmsConfig) lookup(flag string, minio []string) setting {
	if src := flagSource(c.f, flag); src != "" {
		return setting{strings.TrimSpace(c.f.Lookup(flag).Value.String()), src}
	}
	if v, name := firstEnv(minio...); name != "" {
		return setting{strings.TrimSpace(v), name}
	}
	return setting{}
}

func fromCommandLine(source string) bool { return strings.HasPrefix(source, "--") }

// lookupSecret resolves a secret given as a value or as a file holding it. The command line
// wins over SSEFS_* variables; within one of them, both a value and a file is a
// contradiction. MinIO has no file form, so its variable comes last.
func (c *kmsConfig) lookupSecret(what, valueFlag, fileFlag string, minio []string) (setting, error) {
	vsrc, fsrc := flagSource(c.f, valueFlag), flagSource(c.f, fileFlag)
	for _, cmdline := range []bool{true, false} {
		v := vsrc != "" && fromCommandLine(vsrc) == cmdline
		f := fsrc != "" && fromCommandLine(fsrc) == cmdline
		switch {
		case v && f:
			return setting{}, usageError{fmt.Sprintf("%s and %s are both set: give the %s one way", vsrc, fsrc, what)}
		case v:
			return setting{strings.TrimSpace(c.f.Lookup(valueFlag).Value.String()), vsrc}, nil
		case f:
			path := c.f.Lookup(fileFlag).Value.String()
			b, err := readSmallFile(path)
			if err != nil {
				return setting{}, fmt.Errorf("%s file %s=%s: %w", what, fsrc, path, err)
			}
			val := strings.TrimSpace(string(b))
			if val == "" {
				return setting{}, fmt.Errorf("%s file %s=%s is empty", what, fsrc, path)
			}
			return setting{val, fsrc + "=" + path}, nil
		}
	}
	if v, name := firstEnv(minio...); name != "" {
		return setting{strings.TrimSpace(v), name}, nil
	}
	return setting{}, nil
}

// readSmallFile reads a secret or key file, refusing anything that cannot be one.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, unwrapPath(err)
	} else if st.IsDir() {
		return nil, errors.New("is a directory")
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, unwrapPath(err)
	}
	return b, nil
}

// unwrapPath drops the *PathError's repetition of a path the message already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lookupMaster resolves the static master key: the command line, then the SSEFS_*
// variables, then MinIO's; a key and a key file at the same level contradict each other.
func (c *kmsConfig) lookupMaster() (key setting, isFile bool, err error) {
	src := flagSource(c.f, flagMasterKeyFile)
	if fromCommandLine(src) {
		return setting{c.masterKeyFile, src}, true, nil
	}
	ssefsFile := envSetting(ssefsMasterKeyFile)
	if !ssefsFile.set() && src != "" {
		ssefsFile = setting{c.masterKeyFile, src} // --master-key-file's own SSEFS_MASTER_KEY_FILE
	}
	levels := []struct{ key, file setting }{
		{envSetting(ssefsMasterKey), ssefsFile},
		{envSetting(minioMasterKey), envSetting(minioMasterKeyFile)},
	}
	for _, l := range levels {
		switch {
		case l.key.set() && l.file.set():
			return setting{}, false, usageError{fmt.Sprintf("%s and %s are both set: give the master key one way", l.key.source, l.file.source)}
		case l.key.set():
			return l.key, false, nil
		case l.file.set():
			return l.file, true, nil
		}
	}
	return setting{}, false, nil
}

func envSetting(name string) setting {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return setting{v, name}
	}
	return setting{}
}

// resolve decides which KMS the command uses and checks that its settings are complete
// and consistent. A contradiction or a missing setting is a usage error naming the
// flag or variable; a file that cannot be read is an error naming the file.
func (c *kmsConfig) resolve() error {
	s := &kmsSettings{timeout: c.timeout}
	if s.timeout <= 0 {
		return usageError{fmt.Sprintf("%s must be positive", sourceOr(flagSource(c.f, flagKMSTimeout), "--"+flagKMSTimeout))}
	}

	if src := flagSource(c.f, flagKESEndpoint); src != "" {
		s.kesEndpoint = setting{strings.Join(c.kesEndpoints, ","), src}
		s.kesEndpoints = splitList(c.kesEndpoints)
	} else if v, name := firstEnv(minioKESEndpoint...); name != "" {
		s.kesEndpoint = setting{v, name}
		s.kesEndpoints = splitList(strings.Split(v, ","))
	}
	if s.kesEndpoint.set() && len(s.kesEndpoints) == 0 {
		return usageError{fmt.Sprintf("%s names no endpoint", s.kesEndpoint.source)}
	}
	s.vaultEndpoint = c.lookup(flagVaultEndpoint, minioVaultEndpoint)
	master, isFile, err := c.lookupMaster()
	if err != nil {
		return err
	}
	s.master, s.masterIsFile = master, isFile

	var chosen []string
	if s.kesEndpoint.set() {
		s.kind = kindKES
		chosen = append(chosen, fmt.Sprintf("KES (%s)", s.kesEndpoint.source))
	}
	if s.vaultEndpoint.set() {
		s.kind = kindVault
		chosen = append(chosen, fmt.Sprintf("Vault (%s)", s.vaultEndpoint.source))
	}
	if s.master.set() {
		s.kind = kindStatic
		chosen = append(chosen, fmt.Sprintf("a static master key (%s)", s.master.source))
	}
	switch len(chosen) {
	case 0:
		s.kind = kindGenerated
	case 1:
	case 2:
		return usageError{fmt.Sprintf("%s are both configured: configure exactly one KMS", joinAnd(chosen))}
	default:
		return usageError{fmt.Sprintf("%s are all configured: configure exactly one KMS", joinAnd(chosen))}
	}

	// A KES or Vault setting without its endpoint is a configuration that does not do what
	// its author meant. MinIO's variables are exempt: a MinIO environment file may well
	// carry settings for a KMS it does not use, and MinIO ignores them as well.
	if s.kind != kindKES {
		for _, fl := range []string{flagKESKeyFile, flagKESCertFile, flagKESCAPath, flagKESKeyName, flagKESEnclave} {
			if src := flagSource(c.f, fl); src != "" {
				return usageError{fmt.Sprintf("%s is set, but no KES endpoint is (--%s)", src, flagKESEndpoint)}
			}
		}
	}
	if s.kind != kindVault {
		for _, fl := range []string{flagVaultRoleID, flagVaultRoleIDFile, flagVaultSecret, flagVaultSecretFile,
			flagVaultApproleMount, flagVaultTransitMount, flagVaultKeyName, flagVaultNamespace, flagVaultCAPath} {
			if src := flagSource(c.f, fl); src != "" {
				return usageError{fmt.Sprintf("%s is set, but no Vault endpoint is (--%s)", src, flagVaultEndpoint)}
			}
		}
	}

	switch s.kind {
	case kindKES:
		err = c.resolveKES(s)
	case kindVault:
		err = c.resolveVault(s)
	}
	if err != nil {
		return err
	}
	c.res = s
	return nil
}

func (c *kmsConfig) resolveKES(s *kmsSettings) error {
	for _, e := range s.kesEndpoints {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return usageError{fmt.Sprintf("%s: %q is not an https:// URL: KES endpoints look like %s", s.kesEndpoint.source, e, kesEndpointExample)}
		}
	}
	s.kesKeyFile = c.lookup(flagKESKeyFile, minioKESKeyFile)
	s.kesCertFile = c.lookup(flagKESCertFile, minioKESCertFile)
	s.kesCAPath = c.lookup(flagKESCAPath, minioKESCAPath)
	s.kesKeyName = c.lookup(flagKESKeyName, minioKESKeyName)
	s.kesEnclave = c.lookup(flagKESEnclave, minioKESEnclave)
	if v, name := firstEnv(minioKESKeyPassword...); v != "" {
		return usageError{fmt.Sprintf("%s is set: ssefs cannot use an encrypted KES client key; give it an unencrypted key file (mode 0600)", name)}
	}
	switch {
	case !s.kesCertFile.set() && !s.kesKeyFile.set():
		msg := fmt.Sprintf("KES (%s) needs ssefs' client certificate: set %s and %s", s.kesEndpoint.source,
			suggest(flagKESCertFile, minioKESCertFile, s.kesEndpoint.source), suggest(flagKESKeyFile, minioKESKeyFile, s.kesEndpoint.source))
		if _, name := firstEnv(minioKESAPIKey...); name != "" {
			msg += fmt.Sprintf(" (%s is set, but ssefs authenticates to KES only with a client certificate)", name)
		}
		return usageError{msg}
	case !s.kesKeyFile.set():
		return usageError{fmt.Sprintf("the KES client certificate (%s) is given without its private key: set %s", s.kesCertFile.source, suggest(flagKESKeyFile, minioKESKeyFile, s.kesCertFile.source))}
	case !s.kesCertFile.set():
		return usageError{fmt.Sprintf("the KES client key (%s) is given without its certificate: set %s", s.kesKeyFile.source, suggest(flagKESCertFile, minioKESCertFile, s.kesKeyFile.source))}
	}
	if (!s.kesKeyName.set() || s.kesKeyName.value == "") && !c.defaultKeyOptional {
		return usageError{fmt.Sprintf("KES (%s) needs the name of the key that seals new files: set %s", s.kesEndpoint.source, suggest(flagKESKeyName, minioKESKeyName, s.kesEndpoint.source))}
	}
	if err := checkKeyName(s.kesKeyName); err != nil {
		return err
	}
	if err := checkReadable("KES client key", s.kesKeyFile, false); err != nil {
		return err
	}
	if err := checkReadable("KES client certificate", s.kesCertFile, false); err != nil {
		return err
	}
	return checkReadable("KES CA", s.kesCAPath, true)
}

func (c *kmsConfig) resolveVault(s *kmsSettings) error {
	u, err := url.Parse(s.vaultEndpoint.value)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return usageError{fmt.Sprintf("%s: %q is not a URL: Vault's endpoint looks like %s", s.vaultEndpoint.source, s.vaultEndpoint.value, vaultEndpointExample)}
	}
	// The AppRole secret and every data key would cross the network in the clear.
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return usageError{fmt.Sprintf("%s: %q: plain http is allowed only for a Vault on this machine (127.0.0.1, localhost, ::1); use https://", s.vaultEndpoint.source, s.vaultEndpoint.value)}
	}
	if v, name := firstEnv(minioVaultAuthType...); name != "" && !strings.EqualFold(strings.TrimSpace(v), "approle") {
		return usageError{fmt.Sprintf("%s=%q: ssefs logs in to Vault only with AppRole (\"approle\")", name, v)}
	}
	if s.vaultRoleID, err = c.lookupSecret("Vault AppRole role ID", flagVaultRoleID, flagVaultRoleIDFile, minioVaultRoleID); err != nil {
		return err
	}
	if s.vaultSecret, err = c.lookupSecret("Vault AppRole secret ID", flagVaultSecret, flagVaultSecretFile, minioVaultSecret); err != nil {
		return err
	}
	s.vaultApproleMount = c.lookup(flagVaultApproleMount, nil).or(defaultApproleMount)
	s.vaultTransitMount = c.lookup(flagVaultTransitMount, nil).or(defaultTransitMount)
	s.vaultKeyName = c.lookup(flagVaultKeyName, minioVaultKeyName)
	s.vaultNamespace = c.lookup(flagVaultNamespace, minioVaultNamespace)
	s.vaultCAPath = c.lookup(flagVaultCAPath, minioVaultCAPath)
	switch {
	case !s.vaultRoleID.set() || s.vaultRoleID.value == "":
		return usageError{fmt.Sprintf("Vault (%s) needs an AppRole role ID: set %s", s.vaultEndpoint.source, suggest(flagVaultRoleIDFile, minioVaultRoleID, s.vaultEndpoint.source)+" or SSEFS_KMS_VAULT_APPROLE_ID")}
	case !s.vaultSecret.set() || s.vaultSecret.value == "":
		return usageError{fmt.Sprintf("Vault (%s) needs an AppRole secret ID: set %s", s.vaultEndpoint.source, suggest(flagVaultSecretFile, minioVaultSecret, s.vaultEndpoint.source)+" or SSEFS_KMS_VAULT_APPROLE_SECRET")}
	case (!s.vaultKeyName.set() || s.vaultKeyName.value == "") && !c.defaultKeyOptional:
		return usageError{fmt.Sprintf("Vault (%s) needs the name of the transit key that seals new files: set %s", s.vaultEndpoint.source, suggest(flagVaultKeyName, minioVaultKeyName, s.vaultEndpoint.source))}
	case s.vaultApproleMount == "" || s.vaultTransitMount == "":
		return usageError{fmt.Sprintf("--%s and --%s must not be empty", flagVaultApproleMount, flagVaultTransitMount)}
	}
	if err := checkKeyName(s.vaultKeyName); err != nil {
		return err
	}
	return checkReadable("Vault CA", s.vaultCAPath, true)
}

// checkKeyName refuses a key name that could not survive a log line or the metadata key
// file unchanged. Key names are not secret: quoting them is fine.
func checkKeyName(s setting) error {
	if strings.IndexFunc(s.value, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return usageError{fmt.Sprintf("%s: key name %q must not contain white space or control characters", s.source, s.value)}
	}
	return nil
}

// checkReadable opens a configured file (or, for a CA path, a directory) now, so a typo is
// reported at start naming the setting rather than as a TLS failure later.
func checkReadable(what string, s setting, dirOK bool) error {
	if !s.set() || s.value == "" {
		return nil
	}
	f, err := os.Open(s.value)
	if err != nil {
		return fmt.Errorf("%s %s=%s: %w", what, s.source, s.value, unwrapPath(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s %s=%s: %w", what, s.source, s.value, unwrapPath(err))
	}
	if st.IsDir() && !dirOK {
		return fmt.Errorf("%s %s=%s is a directory", what, s.source, s.value)
	}
	if !st.IsDir() {
		if _, err := f.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s %s=%s: %w", what, s.source, s.value, unwrapPath(err))
		}
	}
	return nil
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func joinAnd(items []string) string {
	if len(items) <= 2 {
		return strings.Join(items, " and ")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// suggest names the setting to add: the flag, and where the rest of the configuration
// came from MinIO's variables, MinIO's name for it first.
func suggest(flag string, minio []string, configuredBy string) string {
	if strings.HasPrefix(configuredBy, "MINIO_") && len(minio) > 0 {
		return fmt.Sprintf("%s (or --%s)", minio[0], flag)
	}
	return "--" + flag
}

func sourceOr(src, def string) string {
	if src != "" {
		return src
	}
	return def
}

// openedKMS is the KMS a command works with.
type openedKMS struct {
	kms        keys.KMS
	defaultKey string
	kind       string // kindKES, kindVault, kindStatic, kindGenerated
	describe   string // for messages: "KES at https://127.0.0.1:7373"; never a secret
	identity   string // the KES client identity (not secret), for policy errors
	close      func() error
}

// cause is kmsCause, plus ssefs' KES identity where a policy or an unknown certificate is
// the problem: that is what the operator has to put into the KES policy.
func (k *openedKMS) cause(err error) string {
	if errors.Is(err, keys.ErrServerUntrusted) {
		flag := map[string]string{kindKES: "--kms-kes-ca-path (SSEFS_KMS_KES_CA_PATH)", kindVault: "--kms-vault-ca-path (SSEFS_KMS_VAULT_CA_PATH)"}[k.kind]
		return "the KMS server's TLS certificate is not signed by a CA ssefs trusts: give that CA with " + flag + ": " + err.Error()
	}
	c := kmsCause(err)
	if k.identity != "" && (errors.Is(err, keys.ErrForbidden) || errors.Is(err, keys.ErrIdentityRejected)) &&
		!strings.Contains(c, k.identity) {
		c += fmt.Sprintf(" (ssefs' KES identity is %s)", k.identity)
	}
	return c
}

func (k *openedKMS) Close() error {
	if k == nil || k.close == nil {
		return nil
	}
	c := k.close
	k.close = nil
	return c()
}

// kesOptions and vaultOptions are what keys.NewKES and keys.NewVault take (see
// kmsbackends.go); kept here so this file does not depend on their exact types.
type kesOptions struct {
	Endpoints []string
	KeyFile   string
	CertFile  string
	CAPath    string
	Enclave   string
	Timeout   time.Duration
}

type vaultOptions struct {
	Endpoint     string
	AppRoleMount string
	RoleID       string
	SecretID     string
	TransitMount string
	Namespace    string
	CAPath       string
	Timeout      time.Duration
}

// open connects to the configured KMS. dataDir is needed only for the generated master
// key, which lives there.
func (c *kmsConfig) open(ctx context.Context, dataDir string, stderr io.Writer, log *slog.Logger) (*openedKMS, error) {
	if c.res == nil {
		if err := c.resolve(); err != nil {
			return nil, err
		}
	}
	s := c.res
	switch s.kind {
	case kindKES:
		describe := "KES at " + strings.Join(s.kesEndpoints, ", ")
		if s.kesEnclave.value != "" {
			describe += fmt.Sprintf(" (enclave %s)", s.kesEnclave.value)
		}
		kms, closeFn, err := openKES(kesOptions{
			Endpoints: s.kesEndpoints, KeyFile: s.kesKeyFile.value, CertFile: s.kesCertFile.value,
			CAPath: s.kesCAPath.value, Enclave: s.kesEnclave.value, Timeout: s.timeout,
		})
		if err != nil {
			return nil, withMessage(fmt.Sprintf("%s: %s", describe, kmsCause(err)), err)
		}
		k := &openedKMS{kms: kms, defaultKey: s.kesKeyName.value, kind: kindKES, describe: describe, close: closeFn}
		if id, ok := kms.(interface{ Identity() string }); ok {
			k.identity = id.Identity()
		}
		return k, nil
	case kindVault:
		describe := "Vault at " + s.vaultEndpoint.value
		if s.vaultNamespace.value != "" {
			describe += fmt.Sprintf(" (namespace %s)", s.vaultNamespace.value)
		}
		lctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		kms, closeFn, err := openVault(lctx, vaultOptions{
			Endpoint: s.vaultEndpoint.value, AppRoleMount: s.vaultApproleMount,
			RoleID: s.vaultRoleID.value, SecretID: s.vaultSecret.value,
			TransitMount: s.vaultTransitMount, Namespace: s.vaultNamespace.value,
			CAPath: s.vaultCAPath.value, Timeout: s.timeout,
		})
		if errors.Is(err, keys.ErrIdentityRejected) {
			return nil, withMessage(fmt.Sprintf("%s: the AppRole login (role ID from %s, secret ID from %s) was refused: %s",
				describe, s.vaultRoleID.source, s.vaultSecret.source, err), err)
		}
		if err != nil {
			return nil, withMessage(fmt.Sprintf("%s: %s", describe, kmsCause(err)), err)
		}
		return &openedKMS{kms: kms, defaultKey: s.vaultKeyName.value, kind: kindVault, describe: describe, close: closeFn}, nil
	case kindStatic:
		k, err := c.loadStatic(s)
		if err != nil {
			return nil, err
		}
		return &openedKMS{kms: k, defaultKey: k.Name(), kind: kindStatic,
			describe: fmt.Sprintf("the static master key %q (%s)", k.Name(), s.master.source), close: func() error { return nil }}, nil
	default:
		k, err := loadGeneratedKey(ctx, dataDir, !c.noGenerate, stderr)
		if err != nil {
			return nil, err
		}
		return &openedKMS{kms: k, defaultKey: k.Name(), kind: kindGenerated,
			describe: fmt.Sprintf("the generated master key %q (%s)", k.Name(), filepath.Join(dataDir, masterKeyFile)), close: func() error { return nil }}, nil
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *kmsConfig) loadStatic(s *kmsSettings) (*keys.Static, error) {
	if s.masterIsFile {
		return readKeyFile(s.master.value, s.master.source)
	}
	k, err := keys.ParseMasterKey(strings.TrimSpace(s.master.value))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.master.source, err)
	}
	return k, nil
}

// loadGeneratedKey reads the master key ssefs generated into the data directory, or (for a
// new data directory, and only when allowed) generates it.
func loadGeneratedKey(ctx context.Context, dir string, mayGenerate bool, stderr io.Writer) (*keys.Static, error) {
	generated := filepath.Join(dir, masterKeyFile)
	if _, err := os.Stat(generated); err == nil {
		return readKeyFile(generated, "generated key file")
	}
	if b, err := os.ReadFile(filepath.Join(dir, metaKeyFile)); err == nil {
		return nil, fmt.Errorf("data directory %s is sealed with KMS key %q, but no KMS and no master key is configured: "+
			"give its master key (SSEFS_KMS_MASTER_KEY, SSEFS_KMS_MASTER_KEY_FILE or --master-key-file) or its KMS (--kms-kes-endpoint or --kms-vault-endpoint)",
			dir, sealedKeyName(ctx, b))
	}
	if !mayGenerate {
		return nil, fmt.Errorf("no KMS is configured, and data directory %s has no generated master key: give the KMS or master key it was created with (see 'ssefs help mount')", dir)
	}
	k, err := keys.GenerateMasterKey(generatedKeyName)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(generated, []byte(k.String()+"\n"), nil); err != nil {
		return nil, fmt.Errorf("writing generated master key %s: %w", generated, err)
	}
	fmt.Fprintf(stderr, "ssefs: WARNING: generated a master key into %s; it is for trying ssefs out, not for production: use a KMS, and keep this key safe, or the data is lost\n", generated)
	return k, nil
}

func readKeyFile(path, what string) (*keys.Static, error) {
	b, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	k, err := keys.ParseMasterKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		slog.Warn("master key file is readable by others; chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	return k, nil
}

// noKMS knows no key at all: OpenMetaKeyFile with it reports the name of the key that
// sealed a meta.key without needing any KMS (or ssefs knowing that file's format).
type noKMS struct{}

func (noKMS) GenerateKey(context.Context, string, keys.Context) (keys.DEK, error) {
	return keys.DEK{}, keys.ErrKeyNotFound
}

func (noKMS) Decrypt(context.Context, string, []byte, keys.Context) ([]byte, error) {
	return nil, keys.ErrKeyNotFound
}

func sealedKeyName(ctx context.Context, metaKeyFileContent []byte) string {
	_, name, _ := keys.OpenMetaKeyFile(ctx, noKMS{}, metaKeyFileContent)
	if name == "" {
		return "(unknown)"
	}
	return name
}

// kmsCause names, in the operator's terms, why the KMS refused: what the keys package's
// error kinds mean for whoever has to fix it.
func kmsCause(err error) string {
	switch {
	case errors.Is(err, keys.ErrKeyNotFound):
		return "the key does not exist there"
	case errors.Is(err, keys.ErrKeyDisabled):
		return "the key is disabled"
	case errors.Is(err, keys.ErrForbidden):
		return "the KMS refused access to the key (its policy does not allow it, or it does not know ssefs' identity)"
	case errors.Is(err, keys.ErrIdentityRejected):
		return "the KMS rejected ssefs' identity (client certificate or AppRole): " + err.Error()
	case errors.Is(err, keys.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "the KMS is unreachable: " + err.Error()
	case errors.Is(err, keys.ErrDecrypt):
		return "the key there does not match (another key of the same name, or a damaged meta.key)"
	}
	return err.Error()
}

// metaKeyError is the one line that says why the configured KMS cannot unseal a data
// directory's meta.key: which key sealed it, which KMS was asked, and why it said no.
func metaKeyError(dir, sealedWith string, k *openedKMS, err error) error {
	cause := k.cause(err)
	if k.kind == kindStatic || k.kind == kindGenerated {
		switch {
		case errors.Is(err, keys.ErrKeyNotFound):
			cause = "it is another master key"
		case errors.Is(err, keys.ErrDecrypt):
			cause = "wrong master key (same name, other key material)"
		}
	}
	return withMessage(fmt.Sprintf("data directory %s is sealed with KMS key %q, which %s cannot unseal: %s",
		dir, sealedWith, k.describe, cause), err)
}

// messageError replaces an error's text with one written for the operator while keeping
// the chain for errors.Is.
type messageError struct {
	msg string
	err error
}

func withMessage(msg string, err error) error { return &messageError{msg, err} }
func (e *messageError) Error() string         { return e.msg }
func (e *messageError) Unwrap() error         { return e.err }
