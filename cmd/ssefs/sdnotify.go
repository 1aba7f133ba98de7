package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
)

// sdNotify tells the service manager about a state change, as sd_notify(3) does: one
// datagram to the unix socket named by $NOTIFY_SOCKET. systemd sets it for Type=notify
// units, and waits for READY=1 before it starts what is ordered after ssefs (so
// "After=ssefs@..." means "after the mount is there"). Without the variable it does
// nothing. The protocol is a few lines, so it is spoken here rather than pulled in.
func sdNotify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	// A name starting with @ is in the abstract namespace; Go's unix sockaddr turns the
	// @ into the leading NUL byte itself. systemd 254's vsock: addresses (for VMs) are
	// not spoken here.
	if name[0] != '/' && name[0] != '@' {
		return fmt.Errorf("NOTIFY_SOCKET=%q: want a socket path or an @abstract name", name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", name, err)
	}
	return nil
}

// notifyReady reports the mount (and the S3 API, which is up before it) as ready.
func notifyReady(mountpoint string, log *slog.Logger) {
	if err := sdNotify("READY=1\nSTATUS=Serving " + mountpoint); err != nil {
		log.Warn("cannot tell systemd the mount is ready", "err", err)
	}
}

// notifyStopping reports that the shutdown (flush, unmount) has begun, so systemd shows
// the unit as deactivating while ssefs flushes, which can take a while on a slow store.
func notifyStopping(log *slog.Logger) {
	if err := sdNotify("STOPPING=1"); err != nil {
		log.Warn("cannot tell systemd ssefs is stopping", "err", err)
	}
}
