package kestest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is the KES release the tests run against. scripts/kes/go.mod pins the same.
const Version = "v0.24.0"

// BinaryEnv names the environment variable that points at a prebuilt KES binary
// (scripts/test.sh builds one and sets it). Without it, Binary builds one.
const BinaryEnv = "SSEFS_KES_BIN"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the KES server binary: $SSEFS_KES_BIN if set, else the
// binary built once from scripts/kes (a separate module pinning KES v0.24.0) into a cache
// directory, $(go env GOCACHE)/../ssefs-kes-v0.24.0/kes or ~/.cache/ssefs/kes-v0.24.0/kes.
// A file lock keeps parallel test binaries from building it twice; the first build takes
// about a minute.
func Binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = findOrBuild() })
	return binPath, binErr
}

func findOrBuild() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("kestest: $%s: %w", BinaryEnv, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("kestest: $%s=%s is not an executable file", BinaryEnv, p)
		}
		return p, nil
	}
	src, err := sourceDir()
	if err != nil {
		return "", err
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("kestest: KES binary cache: %w", err)
	}
	bin := filepath.Join(cache, "kes")

	lock, err := os.OpenFile(filepath.Join(cache, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("kestest: KES build lock: %w", err)
	}
	defer lock.Close()
	if err := flock(lock); err != nil {
		return "", fmt.Errorf("kestest: KES build lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	tmp := bin + ".tmp." + strconv.Itoa(os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.Command(goTool(), "build", "-o", tmp, "github.com/minio/kes/cmd/kes")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -buildvcs=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kestest: cannot build KES %s: (cd %s && go build -o %s github.com/minio/kes/cmd/kes): %v\n%s",
			Version, src, tmp, err, strings.TrimSpace(out.String()))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("kestest: %w", err)
	}
	fmt.Fprintf(os.Stderr, "kestest: built KES %s into %s in %s\n", Version, bin, time.Since(start).Round(time.Second))
	return bin, nil
}

// flock takes an exclusive lock on f, retrying when a signal interrupts the wait.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// sourceDir finds scripts/kes: above the working directory (go test runs in the package
// directory), else relative to this source file.
func sourceDir() (string, error) {
	var tried []string
	if dir, err := os.Getwd(); err == nil {
		for {
			cand := filepath.Join(dir, "scripts", "kes")
			tried = append(tried, cand)
			if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
				return cand, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		cand := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "kes")
		tried = append(tried, cand)
		if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
			return filepath.Clean(cand), nil
		}
	}
	return "", fmt.Errorf("kestest: cannot find scripts/kes/go.mod to build KES %s (looked in %s); set $%s to a KES binary",
		Version, strings.Join(tried, ", "), BinaryEnv)
}

// cacheDir is $(go env GOCACHE)/../ssefs-kes-VERSION, else ~/.cache/ssefs/kes-VERSION.
func cacheDir() (string, error) {
	if out, err := exec.Command(goTool(), "env", "GOCACHE").Output(); err == nil {
		if gc := strings.TrimSpace(string(out)); filepath.IsAbs(gc) {
			return filepath.Join(filepath.Dir(gc), "ssefs-kes-"+Version), nil
		}
	}
	uc, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kestest: no cache directory for the KES binary: %w", err)
	}
	return filepath.Join(uc, "ssefs", "kes-"+Version), nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}
