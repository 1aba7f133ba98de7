package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// The engine's error set. Every error an engine call returns wraps exactly one of these
// (or is unexpected, which frontends treat as an I/O error). Frontends map them once,
// with errors.Is: errno for FUSE, error codes for S3.
var (
	ErrNotExist     = errors.New("no such file or directory")
	ErrExist        = errors.New("file exists")
	ErrNotDir       = errors.New("not a directory")
	ErrIsDir        = errors.New("is a directory")
	ErrNotEmpty     = errors.New("directory not empty")
	ErrInvalid      = errors.New("invalid argument")
	ErrNameTooLong  = errors.New("name too long")
	ErrAccess       = errors.New("access denied by key")
	ErrCorrupt      = errors.New("data failed authentication")
	ErrUnavailable  = errors.New("KMS or object store unavailable")
	ErrNotSupported = errors.New("operation not supported")
	ErrPermission   = errors.New("operation not permitted")
	ErrCrossBucket  = errors.New("cross-bucket link or rename")
	ErrNoSpace      = errors.New("no space left on device")
	ErrRange        = errors.New("result too large for buffer")
	ErrTooBig       = errors.New("value too large")
)

// classify turns what a lower layer returned into the engine's error set, keeping the
// chain for the log line. It is applied where those errors arise.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, known := range []error{ErrNotExist, ErrExist, ErrNotDir, ErrIsDir, ErrNotEmpty,
		ErrInvalid, ErrNameTooLong, ErrAccess, ErrCorrupt, ErrUnavailable, ErrNotSupported,
		ErrPermission, ErrCrossBucket, ErrNoSpace, ErrRange, ErrTooBig} {
		if errors.Is(err, known) {
			return err
		}
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return &wrapped{ErrNoSpace, err}
	case errors.Is(err, keys.ErrKeyDisabled), errors.Is(err, keys.ErrKeyNotFound),
		errors.Is(err, keys.ErrForbidden), errors.Is(err, keys.ErrIdentityRejected),
		errors.Is(err, keys.ErrClientKeyRequired), errors.Is(err, keys.ErrClientKeyMismatch):
		return &wrapped{ErrAccess, err}
	case errors.Is(err, keys.ErrInvalidContext):
		return &wrapped{ErrInvalid, err}
	case errors.Is(err, keys.ErrDecrypt):
		return &wrapped{ErrCorrupt, err}
	case errors.Is(err, keys.ErrUnavailable), errors.Is(err, objstore.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &wrapped{ErrUnavailable, err}
	case errors.Is(err, objstore.ErrNotExist):
		// A chunk the metadata references is gone: the file is damaged, not absent.
		return &wrapped{ErrCorrupt, err}
	case errors.Is(err, meta.ErrNotFound):
		return &wrapped{ErrNotExist, err}
	}
	return err
}

// wrapped carries an engine error kind on top of the underlying cause.
type wrapped struct {
	kind  error
	cause error
}

func (w *wrapped) Error() string   { return w.kind.Error() + ": " + w.cause.Error() }
func (w *wrapped) Unwrap() []error { return []error{w.kind, w.cause} }

// The SSE types and the key errors a frontend tells apart, as the engine passes them
// on. They are the keys package's own values (errors.Is matches either), re-exported
// so that frontends depend on the engine alone, never on the key layer.
const (
	SSES3  = keys.SSES3
	SSEKMS = keys.SSEKMS
	SSEC   = keys.SSEC
)

var (
	ErrClientKeyRequired = keys.ErrClientKeyRequired // an SSE-C object read without its key
	ErrClientKeyMismatch = keys.ErrClientKeyMismatch // ... or with another key
	ErrKeyNotFound       = keys.ErrKeyNotFound       // the KMS has no such key (deleted: secure erasure)
	ErrKeyDisabled       = keys.ErrKeyDisabled
	ErrKeyForbidden      = keys.ErrForbidden // the KMS policy does not allow the key
)
