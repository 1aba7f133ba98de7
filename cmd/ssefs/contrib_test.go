package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitFile = "../../contrib/ssefs@.service"

// readUnit returns the unit's Key=Value settings in order (comments and sections dropped).
func readUnit(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var settings [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a setting: %q", unitFile, line)
		}
		settings = append(settings, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}

func unitValues(settings [][2]string, key string) []string {
	var vals []string
	for _, kv := range settings {
		if kv[0] == key {
			vals = append(vals, kv[1])
		}
	}
	return vals
}

func TestUnitFileShape(t *testing.T) {
	settings := readUnit(t)
	want := map[string]string{
		"Type":        "notify",
		"ExecStart":   "/usr/local/bin/ssefs mount %f",
		"ExecStop":    "-/usr/local/bin/ssefs umount %f",
		"DeviceAllow": "/dev/fuse rw",
	}
	for k, v := range want {
		if got := unitValues(settings, k); len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if got := unitValues(settings, "SystemCallFilter"); len(got) != 1 || !strings.Contains(got[0], "@mount") {
		t.Errorf("SystemCallFilter=%q must allow @mount (mount(2), umount2(2))", got)
	}
	if got := unitValues(settings, "CapabilityBoundingSet"); len(got) != 1 || !strings.Contains(got[0], "CAP_SYS_ADMIN") {
		t.Errorf("CapabilityBoundingSet=%q must keep CAP_SYS_ADMIN, which mount(2) needs", got)
	}
	// Any of these gives the service a mount namespace of its own (systemd's
	// exec_needs_mount_namespace), and the mount would not be seen outside the service.
	for _, key := range []string{
		"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
		"PrivateNetwork", "PrivateIPC", "IPCNamespacePath", "NetworkNamespacePath", "PrivateUsers",
		"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
		"ProtectProc", "ProcSubset", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
		"ExecPaths", "NoExecPaths", "BindPaths", "BindReadOnlyPaths", "TemporaryFileSystem",
		"RootDirectory", "RootImage", "MountImages", "ExtensionImages", "ExtensionDirectories",
		"MountFlags", "MountAPIVFS", "LogNamespace", "DynamicUser",
	} {
		if got := unitValues(settings, key); len(got) > 0 {
			t.Errorf("%s=%s would hide the mount in a namespace of the service's own", key, got[0])
		}
	}
}

// systemd-analyze verify checks every directive's name and value (it prints a warning,
// and still exits 0, for one it does not know).
func TestUnitFileVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd; scripts/test.sh installs it)")
	}
	// verify also checks that ExecStart's program exists: point it at one that does.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ssefs@.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/ssefs", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, "ssefs@mnt-ssefs.service"))
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}
