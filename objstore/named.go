package objstore

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Named objects: metadata snapshots (ssefs backup) kept in an S3 store beside the chunk
// objects, as PREFIX/backups/NAME. They are no part of the Store interface: chunk objects
// are small, random and written once, while a snapshot is one large stream, written
// rarely, that must outlive the host (a Local store lives on that host, so its snapshots
// go to a directory or file elsewhere, chosen by the caller). A name under BackupsDir
// contains a "/", so it never parses as an object ID: Walk skips it, and fsck never takes
// a snapshot for an orphaned chunk.

// BackupsDir is the "directory" under the prefix that holds the named objects.
const BackupsDir = "backups/"

// NamedObject is one named object in a listing.
type NamedObject struct {
	Name     string
	Size     int64
	Modified time.Time
}

// backupPartSize is the part size of a streamed upload. minio-go holds one part in
// memory; 16 MiB parts take a stream of up to 160 GiB within S3's 10,000 parts.
const backupPartSize = 16 << 20

// CheckName refuses a name that is not a plain file name.
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("objstore: bad object name %q", name)
	case len(name) > 200:
		return fmt.Errorf("objstore: object name of %d bytes, more than 200", len(name))
	case strings.ContainsAny(name, "/\\"):
		return fmt.Errorf("objstore: object name %q has a slash", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("objstore: object name %q has a control character", name)
		}
	}
	return nil
}

func (s *S3) namedKey(name string) string { return s.prefix + BackupsDir + name }

// PutNamed uploads r as the named object, streamed in parts (multipart), with the SSE
// headers as every PUT. S3 makes the object visible only when the upload completes, and
// minio-go aborts an upload that failed, so a reader never sees half of it. The stream
// cannot be replayed, so nothing is retried: a failed upload is the caller's to repeat.
// It returns the bytes uploaded.
func (s *S3) PutNamed(ctx context.Context, name string, r io.Reader) (int64, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("objstore: put %s: %w", name, err)
	}
	opts := s.putOptions()
	opts.DisableMultipart = false
	opts.PartSize = backupPartSize
	info, err := s.client.PutObject(ctx, s.bucket, s.namedKey(name), r, -1, opts)
	if err != nil {
		return 0, fmt.Errorf("objstore: put %s: %w", name, s.describe(err))
	}
	return info.Size, nil
}

// GetNamed opens the named object for reading, with its size. A missing object is
// ErrNotExist.
func (s *S3) GetNamed(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if err := CheckName(name); err != nil {
		return nil, 0, err
	}
	if err := s.check(ctx); err != nil {
		return nil, 0, fmt.Errorf("objstore: get %s: %w", name, err)
	}
	key := s.namedKey(name)
	var body io.ReadCloser
	var size int64
	err := s.do(ctx, func(actx context.Context) error {
		// The body outlives this attempt: it is read with the caller's context.
		b, info, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			if isNotFound(err) {
				return &permanentError{err}
			}
			return err
		}
		body, size = b, info.Size
		return nil
	})
	switch {
	case err != nil && isNotFound(err):
		return nil, 0, fmt.Errorf("objstore: %s: no %s%s: %w", s.desc, BackupsDir, name, ErrNotExist)
	case err != nil:
		return nil, 0, fmt.Errorf("objstore: get %s: %w", name, s.describe(err))
	}
	return body, size, nil
}

// ListNamed lists the named objects, by name.
func (s *S3) ListNamed(ctx context.Context) ([]NamedObject, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("objstore: list: %w", err)
	}
	var out []NamedObject
	err := s.do(ctx, func(ctx context.Context) error {
		out = out[:0]
		for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{
			Prefix: s.prefix + BackupsDir, Recursive: true,
		}) {
			if obj.Err != nil {
				return obj.Err
			}
			name := strings.TrimPrefix(obj.Key, s.prefix+BackupsDir)
			if CheckName(name) != nil {
				continue // not one of ours: a "sub-directory", or a human's file
			}
			out = append(out, NamedObject{Name: name, Size: obj.Size, Modified: obj.LastModified})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: list %s: %w", BackupsDir, s.describe(err))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteNamed removes the named object; a missing one is not an error.
func (s *S3) DeleteNamed(ctx context.Context, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("objstore: delete %s: %w", name, err)
	}
	if err := s.removeKey(ctx, s.namedKey(name)); err != nil {
		return fmt.Errorf("objstore: delete %s: %w", name, s.describe(err))
	}
	return nil
}

// NamedStore is a Store that also keeps named objects (S3).
type NamedStore interface {
	Store
	PutNamed(ctx context.Context, name string, r io.Reader) (int64, error)
	GetNamed(ctx context.Context, name string) (io.ReadCloser, int64, error)
	ListNamed(ctx context.Context) ([]NamedObject, error)
	DeleteNamed(ctx context.Context, name string) error
}

var _ NamedStore = (*S3)(nil)
