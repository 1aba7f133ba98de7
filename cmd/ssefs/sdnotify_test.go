package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify is a stand-in for systemd's notification socket.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// recvNotify returns the next datagram; the deadline only bounds a failing test.
func recvNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification arrived: %v", err)
	}
	return string(buf[:n])
}

func TestSdNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn := listenNotify(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	notifyReady("/mnt/x", log)
	if got := recvNotify(t, conn); got != "READY=1\nSTATUS=Serving /mnt/x" {
		t.Errorf("ready: got %q", got)
	}
	notifyStopping(log)
	if got := recvNotify(t, conn); got != "STOPPING=1" {
		t.Errorf("stopping: got %q", got)
	}
}

func TestSdNotifyAbstractSocket(t *testing.T) {
	var b [8]byte
	rand.Read(b[:])
	name := "@ssefs-notify-test-" + hex.EncodeToString(b[:])
	conn := listenNotify(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	if got := recvNotify(t, conn); got != "READY=1" {
		t.Errorf("got %q", got)
	}
}

func TestSdNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v, want nothing done", err)
	}
}

func TestSdNotifyErrors(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if err := sdNotify("READY=1"); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Errorf("vsock address: got %v, want an error naming NOTIFY_SOCKET", err)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	t.Setenv("NOTIFY_SOCKET", missing)
	if err := sdNotify("READY=1"); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing socket: got %v, want an error naming it", err)
	}
}
