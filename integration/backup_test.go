package integration

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/internal/miniotest"
)

// End-to-end tests of ssefs backup and restore (README: "Lose the host, restore on
// another").

// walkthroughHeading starts the README section whose sh block TestBackupWalkthrough runs.
const walkthroughHeading = "## Lose the host, restore on another"

// readmeWalkthrough returns the commands of the first sh block of the README section, one
// per command (continuation lines joined), without comment lines.
func readmeWalkthrough(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n"+walkthroughHeading)
	if !ok {
		t.Fatalf("README.md has no section %q", walkthroughHeading)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	_, block, ok := strings.Cut(sec, "\n```sh\n")
	if !ok {
		t.Fatalf("README section %q has no sh block", walkthroughHeading)
	}
	block, _, _ = strings.Cut(block, "\n```")
	var cmds []string
	cur := ""
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") && cur == "" || strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\")
			continue
		}
		cmds = append(cmds, strings.TrimSpace(cur+line))
		cur = ""
	}
	return cmds
}

// bgProc is a command the walkthrough runs in the background (a trailing &).
type bgProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	state  *os.ProcessState
	isSSEF bool
	mnt    string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var trailingAmp = regexp.MustCompile(`\s&\s*(#.*)?$`)

// The README walkthrough, run as it is written: start MinIO, make the bucket, mount ssefs
// on it (with its S3 API), write files through the mount and over S3, back up, lose the
// host (unmount, delete the data directory), restore into another data directory, mount
// it, and compare every file's sha256. Paths and ports are swapped for the test's own; the
// commands are the README's. Then the test checks the restored files itself, byte for byte.
func TestBackupWalkthrough(t *testing.T) {
	requireMount(t)
	minioBin := miniotest.Require(t)
	mc := mcBin(t)
	cmds := readmeWalkthrough(t)
	for _, must := range []string{"minio server", "ssefs mount --store", "ssefs backup", "rm -rf /srv/ssefs", "ssefs restore", "diff <("} {
		found := false
		for _, c := range cmds {
			found = found || strings.Contains(c, must)
		}
		if !found {
			t.Fatalf("the README walkthrough has no %q command any more: %q", must, cmds)
		}
	}

	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	home := filepath.Join(root, "home")
	for _, d := range []string{bin, home, filepath.Join(root, "mc")} {
		must(t, os.MkdirAll(d, 0o700), "mkdir")
	}
	for name, target := range map[string]string{"ssefs": ssefsBin, "minio": minioBin, "mc": mc} {
		must(t, os.Symlink(target, filepath.Join(bin, name)), "symlink")
	}
	minioAddr, s3Addr := freeAddr(t), freeAddr(t)
	mnt := filepath.Join(root, "mnt")
	subst := strings.NewReplacer(
		"/srv/minio", filepath.Join(root, "minio"),
		"/srv/ssefs", filepath.Join(root, "host1", "ssefs"),
		"/var/lib/ssefs", filepath.Join(root, "host2", "ssefs"),
		"/mnt/ssefs", mnt,
		"/etc/ssefs", filepath.Join(root, "kms"),
		"127.0.0.1:9000", minioAddr,
		"127.0.0.1:8000", s3Addr,
	)
	// The files: a tree through the mount (cp -r ~/photos/.), a file over S3 (mc cp).
	r := rng(t)
	want := map[string][]byte{}
	for i, size := range []int{0, 1, 4096, ChunkSize - 1, ChunkSize, 3*ChunkSize + 12345} {
		rel := fmt.Sprintf("photos/2026/%02d/img-%d.jpg", i%3, i)
		want[rel] = randBytes(r, size)
	}
	want["photos/docs/report.pdf"] = randBytes(r, 2*ChunkSize+77)
	for rel, data := range want {
		src := filepath.Join(home, rel)
		if rel == "photos/docs/report.pdf" {
			src = filepath.Join(home, "report.pdf")
		}
		must(t, os.MkdirAll(filepath.Dir(src), 0o755), "mkdir")
		writeFile(t, src, data, 0o644)
	}

	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + home, "MC_CONFIG_DIR=" + filepath.Join(root, "mc"),
		"MC_NO_COLOR=1", "MC_DISABLE_PAGER=1", "GORACE=halt_on_error=0",
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CALLHOME_ENABLE=off", "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		uk := strings.ToUpper(k)
		if k == "PATH" || k == "HOME" || k == "GORACE" || strings.HasPrefix(uk, "SSEFS_") || strings.HasPrefix(uk, "MINIO_") ||
			strings.HasPrefix(uk, "AWS_") || strings.HasPrefix(uk, "MC_") || strings.HasSuffix(uk, "_PROXY") {
			continue
		}
		env = append(env, kv)
	}
	var bg []*bgProc
	t.Cleanup(func() {
		for _, p := range bg {
			select {
			case <-p.done:
				continue
			default:
			}
			if p.isSSEF {
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
			} else {
				_ = p.cmd.Process.Kill()
			}
			select {
			case <-p.done:
			case <-time.After(cleanTimeout):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
			if p.mnt != "" && isMounted(p.mnt) {
				_ = unix.Unmount(p.mnt, unix.MNT_DETACH)
			}
		}
		if t.Failed() {
			for _, p := range bg {
				t.Logf("background %q output (tail):\n%s", p.cmd.Args, tail(p.out.String(), 3000))
			}
		}
	})
	var mountProc *bgProc
	ran := 0
	for _, raw := range cmds {
		line := subst.Replace(raw)
		if strings.HasPrefix(line, "export ") {
			for _, kv := range strings.Fields(strings.TrimPrefix(line, "export ")) {
				if strings.HasPrefix(kv, "#") {
					break
				}
				env = append(env, kv)
			}
			continue
		}
		ran++
		if trailingAmp.MatchString(line) {
			line = trailingAmp.ReplaceAllString(line, "")
			p := &bgProc{out: &syncBuffer{}, done: make(chan struct{})}
			p.cmd = exec.Command("bash", "-c", "exec env "+line) // env: the line may start with VAR=value
			p.cmd.Env, p.cmd.Dir = env, home
			p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
			p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			must(t, p.cmd.Start(), "start "+line)
			go func() { _ = p.cmd.Wait(); p.state = p.cmd.ProcessState; close(p.done) }()
			bg = append(bg, p)
			switch {
			case strings.Contains(raw, "minio server"):
				waitMinIO(t, p, "http://"+minioAddr)
			case strings.Contains(raw, "ssefs mount"):
				p.isSSEF, p.mnt, mountProc = true, mnt, p
				if !waitCond(readyTimeout, func() bool { return strings.Contains(p.out.String(), readyPrefix) || exited(p) }) || exited(p) {
					t.Fatalf("README: %s\ndid not mount; output:\n%s", raw, p.out.String())
				}
			default:
				t.Fatalf("README: %s: a background command this test does not know how to wait for", raw)
			}
			continue
		}
		cmd := exec.Command("bash", "-c", line)
		cmd.Env, cmd.Dir = env, home
		out, err := cmd.CombinedOutput()
		t.Logf("$ %s\n%s", raw, out)
		if err != nil {
			t.Fatalf("README: %s\nfailed: %v\n%s", raw, err, out)
		}
		if strings.Contains(string(out), "DATA RACE") {
			t.Errorf("README: %s: a DATA RACE:\n%s", raw, out)
		}
		if strings.HasPrefix(line, "umount ") && mountProc != nil {
			// ssefs flushes, closes the store and exits after the unmount: the next
			// command (rm -rf of its data directory) must not race with that.
			p := mountProc
			select {
			case <-p.done:
			case <-time.After(stopTimeout):
				t.Fatalf("ssefs did not exit within %s of %q; output:\n%s", stopTimeout, raw, p.out.String())
			}
			if code := p.state.ExitCode(); code != 0 || strings.Contains(p.out.String(), "DATA RACE") {
				t.Fatalf("ssefs exited with %d after %q; output:\n%s", code, raw, p.out.String())
			}
			mountProc = nil
		}
		if strings.HasPrefix(raw, "ssefs backup --data-dir") && !strings.Contains(string(out), "backups/") {
			t.Errorf("ssefs backup did not say where the snapshot went:\n%s", out)
		}
		if strings.HasPrefix(raw, "ssefs restore") && !strings.Contains(string(out), ", 0 inconsistencies") {
			t.Errorf("ssefs restore did not report a clean check:\n%s", out)
		}
		if strings.HasPrefix(raw, "diff <(") && !strings.Contains(string(out), "every file intact") {
			t.Errorf("the README's final check did not pass:\n%s", out)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "host1", "ssefs")); !os.IsNotExist(err) {
		t.Errorf("the first host's data directory still exists: %v", err)
	}
	if mountProc == nil {
		t.Fatal("the walkthrough ends without a mount of the restored data directory")
	}
	// Every file, through the restored mount, byte for byte.
	got := map[string]string{}
	err := filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(mnt, p)
		got[rel] = fileSHA(t, p)
		return nil
	})
	must(t, err, "walk the restored mount")
	if len(got) != len(want) {
		t.Errorf("the restored mount holds %d files, want %d: %v", len(got), len(want), got)
	}
	for rel, data := range want {
		if got[rel] != sha(data) {
			t.Errorf("restored %s: sha256 %.16s, want %.16s", rel, got[rel], sha(data))
		}
	}
	t.Logf("ran %d README commands", ran)
}

func exited(p *bgProc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitMinIO waits until the MinIO the README started answers its readiness probe.
func waitMinIO(t *testing.T, p *bgProc, url string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	ok := waitCond(60*time.Second, func() bool {
		if exited(p) {
			return true
		}
		resp, err := c.Get(url + "/minio/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ok || exited(p) {
		t.Fatalf("MinIO did not become ready; output:\n%s", p.out.String())
	}
}

// ---------------------------------------------------------------------------------------

// backupDir is where cfg's backups go: the MinIO store's bucket when the
// objects are there, else a directory "on another disk" (--backup-to).
func backupDir(t *testing.T, cfg Config) string {
	if storeOf(cfg) != "" {
		return ""
	}
	return t.TempDir()
}

// storeOf is cfg's SSEFS_STORE: the last one set wins, as in the process' environment.
func storeOf(cfg Config) string {
	store := ""
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, "SSEFS_STORE="); ok {
			store = v
		}
	}
	return store
}

// snapshotFiles returns the snapshots of cfg's store (name -> content): the objects under
// PREFIX/backups/ of its MinIO, or the files of dir.
func snapshotFiles(t *testing.T, m *miniotest.Server, cfg Config, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if dir != "" {
		ents, err := os.ReadDir(dir)
		must(t, err, "read the backup directory")
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".ssefs-backup") {
				out[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
			}
		}
		return out
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(storeOf(cfg), "s3://"), "/")
	for _, o := range m.Objects(t, bucket, prefix+"/backups/") {
		out[filepath.Base(o.Key)] = o.Data
	}
	return out
}

// objectCount counts cfg's chunk objects.
func objectCount(t *testing.T, m *miniotest.Server, cfg Config) int {
	t.Helper()
	n := 0
	if storeOf(cfg) == "" {
		err := filepath.WalkDir(filepath.Join(cfg.DataDir, "objects"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && len(d.Name()) == 32 {
				n++
			}
			return err
		})
		must(t, err, "count objects")
		return n
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(storeOf(cfg), "s3://"), "/")
	for _, o := range m.Objects(t, bucket, prefix+"/") {
		if len(filepath.Base(o.Key)) == 32 && !strings.Contains(o.Key, "/backups/") {
			n++
		}
	}
	return n
}

func backupsWritten(p *Proc) int { return strings.Count(p.Stderr(), `msg="backup written"`) }

// itConfig is newConfig with, on the MinIO store, a MinIO the test can look into.
func itConfig(t *testing.T) (Config, *miniotest.Server) {
	t.Helper()
	cfg := newConfig(t)
	if storeOf(cfg) == "" {
		return cfg, nil
	}
	m := miniotest.Start(t)
	m.MakeBucket(t, "backups-it")
	return withMinIOStore(cfg, m, "backups-it", "it"), m
}

// --backup-interval on a live mount: snapshots appear by themselves, only --backup-keep
// of them stay, and once the snapshots that named replaced chunks are pruned, those
// chunk objects go. On the local store the snapshots go to --backup-to.
func TestBackupInterval(t *testing.T) {
	cfg, m := itConfig(t)
	dir := backupDir(t, cfg)
	cfg.Args = append(cfg.Args, "--backup-interval", "1s", "--backup-keep", "3")
	if dir != "" {
		cfg.Args = append(cfg.Args, "--backup-to", dir)
	}
	mnt := StartMount(t, cfg)
	r := rng(t)
	writeFile(t, mnt.P("f"), randBytes(r, 3*ChunkSize), 0o644)
	base := backupsWritten(mnt.Proc)
	if !waitCond(readyTimeout, func() bool { return backupsWritten(mnt.Proc) >= base+2 }) {
		t.Fatalf("no backups from --backup-interval 1s; stderr:\n%s", tail(mnt.Stderr(), 4000))
	}
	before := objectCount(t, m, cfg)
	data := randBytes(r, ChunkSize)
	writeFile(t, mnt.P("f"), data, 0o644) // replaces the 3 chunks with 1
	d, err := os.Open(mnt.Dir)
	must(t, err, "open the mount")
	must(t, d.Sync(), "fsync the mount") // the frees are durable: without backups the objects would go now
	d.Close()
	if n := objectCount(t, m, cfg); n < before {
		t.Errorf("%d chunk objects right after replacing a file, %d before: freed objects went while snapshots name them", n, before)
	}
	// Four more backups: the three kept ones were all taken after the change.
	base = backupsWritten(mnt.Proc)
	if !waitCond(readyTimeout, func() bool { return backupsWritten(mnt.Proc) >= base+4 }) {
		t.Fatalf("the backups stopped; stderr:\n%s", tail(mnt.Stderr(), 4000))
	}
	mnt.Stop(t)
	if n := len(snapshotFiles(t, m, cfg, dir)); n != 3 {
		t.Errorf("%d snapshots kept, want --backup-keep 3", n)
	}
	if n := objectCount(t, m, cfg); n != 1 {
		t.Errorf("%d chunk objects once no kept snapshot names the replaced ones, want 1", n)
	}
	mnt = StartMount(t, cfg)
	assertContent(t, mnt.P("f"), data)
}

// The deferred deletion, end to end: a snapshot taken through a live mount's admin
// socket; files then overwritten, truncated and deleted, and the frees made durable; the
// snapshot restored into a new data directory reads back every file as it was. Then a
// backup that keeps only the newest snapshot lets the old chunk objects go.
func TestBackupRestoreAfterChanges(t *testing.T) {
	cfg, m := itConfig(t)
	dir := backupDir(t, cfg)
	mnt := StartMount(t, cfg)
	r := rng(t)
	old := map[string][]byte{"keep": randBytes(r, 2*ChunkSize+5), "change": randBytes(r, 3*ChunkSize),
		"cut": randBytes(r, 2*ChunkSize+9), "gone": randBytes(r, ChunkSize+1)}
	for name, data := range old {
		writeFile(t, mnt.P(name), data, 0o644)
	}
	var to []string
	if dir != "" {
		to = []string{"--to", dir}
	}
	res := runExpectExit(t, cfg, append([]string{"backup", "--data-dir", cfg.DataDir}, to...)...)
	if res.Code != 0 {
		t.Fatalf("backup through the admin socket: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	snaps := snapshotFiles(t, m, cfg, dir)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots after one backup", len(snaps))
	}
	snapFile := filepath.Join(t.TempDir(), "old.ssefs-backup")
	for _, b := range snaps {
		writeFile(t, snapFile, b, 0o600)
	}
	before := objectCount(t, m, cfg)

	writeFile(t, mnt.P("change"), []byte("changed after the snapshot"), 0o644)
	must(t, os.Truncate(mnt.P("cut"), 100), "truncate")
	must(t, os.Remove(mnt.P("gone")), "rm")
	d, err := os.Open(mnt.Dir)
	must(t, err, "open the mount")
	must(t, d.Sync(), "fsync the mount")
	d.Close()
	if n := objectCount(t, m, cfg); n < before {
		t.Errorf("%d chunk objects after the changes, %d before: freed objects were deleted while a snapshot names them", n, before)
	}
	mnt.Stop(t)

	// The old snapshot on a "new host".
	newDir := filepath.Join(t.TempDir(), "restored")
	if dir != "" { // a local store: its objects come along, as README says
		must(t, os.MkdirAll(newDir, 0o700), "mkdir")
		runTool(t, "/", "cp", "-a", filepath.Join(cfg.DataDir, "objects"), filepath.Join(newDir, "objects"))
	}
	res = runExpectExit(t, cfg, "restore", "--data-dir", newDir, "--from", snapFile)
	if res.Code != 0 || !strings.Contains(res.Stdout, ", 0 inconsistencies") {
		t.Fatalf("restore of the old snapshot: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	restored := cfg
	restored.DataDir, restored.Mountpoint = newDir, t.TempDir()
	mnt2 := StartMount(t, restored)
	for name, data := range old {
		dropPageCache(t, mnt2.P(name))
		assertContent(t, mnt2.P(name), data)
	}
	mnt2.Stop(t)

	// Back on the first data directory: keeping only a new snapshot frees the old objects.
	res = runExpectExit(t, cfg, append([]string{"backup", "--keep", "1", "--data-dir", cfg.DataDir}, to...)...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "1 pruned") {
		t.Fatalf("backup --keep 1: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := objectCount(t, m, cfg); n >= before {
		t.Errorf("%d chunk objects after the old snapshot was pruned, %d before", n, before)
	}
	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	if res.Code != 0 || !strings.Contains(res.Stdout, " 0 inconsistencies") || strings.Contains(res.Stdout, "unreferenced") {
		t.Errorf("fsck after the release: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
}

// A damaged snapshot in the bucket (one flipped byte, or cut short), or the wrong master
// key: restore fails with one line that says so, and leaves no data directory, not even a
// temporary one.
func TestBackupRestoreRefusesDamage(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "backups-it")
	cfg := withMinIOStore(newConfig(t), m, "backups-it", "it")
	mnt := StartMount(t, cfg)
	writeFile(t, mnt.P("f"), randBytes(rng(t), ChunkSize+3), 0o644)
	mnt.Stop(t)
	if res := runExpectExit(t, cfg, "backup", "--data-dir", cfg.DataDir); res.Code != 0 {
		t.Fatalf("backup: exit %d\n%s", res.Code, res.Stderr)
	}
	objs := m.Objects(t, "backups-it", "it/backups/")
	if len(objs) != 1 {
		t.Fatalf("%d snapshots in the bucket", len(objs))
	}
	good := objs[0].Data
	c := m.Client(t)
	put := func(b []byte) {
		t.Helper()
		_, err := c.PutObject(context.Background(), "backups-it", objs[0].Key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{})
		must(t, err, "replace the snapshot")
	}
	parent := t.TempDir()
	newDir := filepath.Join(parent, "restored")
	restore := func(what string, c Config, wantMsg string) {
		t.Helper()
		res := runExpectExit(t, c, "restore", "--data-dir", newDir)
		if res.Code != 1 || !strings.Contains(res.Stderr, wantMsg) || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr:\n%s", what, res.Code, res.Stderr)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 0 {
			t.Errorf("%s: left %v behind", what, ents)
		}
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-200] ^= 0x40
	put(flipped)
	restore("a flipped byte", cfg, "damaged or was tampered with")
	put(good[:len(good)-30])
	restore("cut short", cfg, "damaged or was tampered with")
	hdr := bytes.Clone(good)
	i := bytes.Index(hdr, []byte(`"read_ts":`)) + len(`"read_ts":`)
	hdr[i] = '0' + (hdr[i]-'0'+1)%10
	put(hdr)
	restore("a changed header", cfg, "damaged or was tampered with")
	put(good)
	other := cfg
	other.Env = append(other.Env[:len(other.Env):len(other.Env)], "SSEFS_KMS_MASTER_KEY="+NewKey("it-key"))
	restore("another master key", other, "cannot unseal")

	// And the good one restores.
	res := runExpectExit(t, cfg, "restore", "--data-dir", newDir)
	if res.Code != 0 || !strings.Contains(res.Stdout, ", 0 inconsistencies") {
		t.Fatalf("restore: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	res = runExpectExit(t, cfg, "restore", "--data-dir", newDir)
	if res.Code != 1 || !strings.Contains(res.Stderr, "not empty") {
		t.Errorf("restore over a data directory: exit %d\n%s", res.Code, res.Stderr)
	}
}
