package fs

import (
	"context"
	"errors"
	"testing"
)

// Names outside the namespaces anything can be stored under (ls -l asks for
// system.posix_acl_access of every file) are missing without a lookup, and read as
// missing like any absent name; stored names read back.
func TestGetXattrNamespaces(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	ino := writeFile(t, env.e, env.bucket, "f", []byte("x"))
	if err := env.e.SetXattr(ctx, ino, "security.selinux", []byte("ctx"), 0); err != nil {
		t.Fatal(err)
	}
	if err := env.e.SetXattr(ctx, ino, "system.posix_acl_access", []byte("acl"), 0); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("setting a system. xattr: %v, want ErrNotSupported", err)
	}
	for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default", "user.missing", "other.name"} {
		if v, err := env.e.GetXattr(ctx, ino, name); !errors.Is(err, ErrNotExist) {
			t.Errorf("getxattr %s: %q, %v; want ErrNotExist", name, v, err)
		}
	}
	if v, err := env.e.GetXattr(ctx, ino, "security.selinux"); err != nil || string(v) != "ctx" {
		t.Errorf("getxattr security.selinux: %q, %v", v, err)
	}
}

// TestSecurityXattrsNeedNoLookupUntilUsed: while no inode has a security. xattr, such
// names are missing without a lookup; the first one set is found at once, and after a
// restart.
func TestSecurityXattrsNeedNoLookupUntilUsed(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	ino := writeFile(t, env.e, env.bucket, "f", []byte("x"))
	if env.e.securityXattrs.Load() {
		t.Fatal("a new store starts with security xattrs noted")
	}
	if _, err := env.e.GetXattr(ctx, ino, "security.selinux"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("getxattr security.selinux before any was set: %v", err)
	}
	if err := env.e.SetXattr(ctx, ino, "security.capability", []byte("cap"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := env.e.GetXattr(ctx, ino, "security.capability"); err != nil || string(v) != "cap" {
		t.Fatalf("getxattr right after the first security xattr: %q, %v", v, err)
	}
	env.reopen()
	if v, err := env.e.GetXattr(ctx, ino, "security.capability"); err != nil || string(v) != "cap" {
		t.Fatalf("getxattr after a restart: %q, %v", v, err)
	}
}
