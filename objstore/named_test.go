package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/ssefs/ssefs/internal/miniotest"
)

// Named objects on a real MinIO: a stream of several parts uploads and reads back whole,
// lists by name, never shows up in Walk (so never as an orphaned chunk), and deletes.
func TestNamedObjectsMinIO(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "named")
	s := minioStore(t, m, "named", nil)
	ctx := context.Background()
	id := NewID()
	if err := s.Put(ctx, id, []byte("a chunk")); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, backupPartSize+12345) // two parts
	rand.Read(data)
	n, err := s.PutNamed(ctx, "snap-1.ssefs-backup", bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("PutNamed: %d, %v", n, err)
	}
	if _, err := s.PutNamed(ctx, "snap-0.ssefs-backup", bytes.NewReader([]byte("small"))); err != nil {
		t.Fatal(err)
	}
	rc, size, err := s.GetNamed(ctx, "snap-1.ssefs-backup")
	if err != nil || size != int64(len(data)) {
		t.Fatalf("GetNamed: %d, %v", size, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	list, err := s.ListNamed(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "snap-0.ssefs-backup" || list[1].Size != int64(len(data)) {
		t.Fatalf("ListNamed: %+v, %v", list, err)
	}
	var walked []ID
	if err := s.Walk(ctx, func(id ID, _ int64) error { walked = append(walked, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0] != id {
		t.Fatalf("Walk saw %v, want only the chunk %s", walked, id)
	}
	if err := s.DeleteNamed(ctx, "snap-1.ssefs-backup"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNamed(ctx, "snap-1.ssefs-backup"); err != nil {
		t.Fatalf("deleting a missing named object: %v", err)
	}
	if _, _, err := s.GetNamed(ctx, "snap-1.ssefs-backup"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("GetNamed of a deleted object: %v", err)
	}
	// A failed stream leaves nothing behind.
	if _, err := s.PutNamed(ctx, "broken", io.MultiReader(bytes.NewReader(data), &failingReader{})); err == nil {
		t.Fatal("PutNamed of a failing stream succeeded")
	}
	if list, _ := s.ListNamed(ctx); len(list) != 1 {
		t.Fatalf("after a failed upload: %+v", list)
	}
	for _, bad := range []string{"", "..", "a/b", "x\n"} {
		if _, err := s.PutNamed(ctx, bad, bytes.NewReader(nil)); err == nil {
			t.Errorf("PutNamed(%q) succeeded", bad)
		}
	}
}

type failingReader struct{}

func (*failingReader) Read([]byte) (int, error) { return 0, errors.New("the stream broke") }
