package miniotest

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// An object written before Stop is there after Start, on the same port; while stopped, the
// server refuses connections.
func TestStopStartKeepsData(t *testing.T) {
	s := Start(t)
	s.MakeBucket(t, "bkt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.Client(t)
	data := []byte("kept across a restart")
	if _, err := c.PutObject(ctx, "bkt", "k", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	endpoint := s.Endpoint
	s.Stop()
	if s.Running() {
		t.Fatal("Running after Stop")
	}
	if _, err := c.StatObject(ctx, "bkt", "k", minio.StatObjectOptions{}); err == nil {
		t.Fatal("a stopped server answered")
	}
	s.Start(t)
	if s.Endpoint != endpoint {
		t.Fatalf("endpoint changed across Stop/Start: %s -> %s", endpoint, s.Endpoint)
	}
	objs := s.Objects(t, "bkt", "")
	if len(objs) != 1 || objs[0].Key != "k" || !bytes.Equal(objs[0].Data, data) {
		t.Fatalf("after restart: %+v", objs)
	}
}

// WithTLS serves https with a certificate the CA file verifies; WithKMS makes SSE-S3 work,
// and StatObject shows it.
func TestTLSAndKMS(t *testing.T) {
	s := Start(t, WithTLS(), WithKMS())
	if s.CAFile == "" || s.Endpoint[:8] != "https://" {
		t.Fatalf("endpoint %s, CA %q", s.Endpoint, s.CAFile)
	}
	s.MakeBucket(t, "bkt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.Client(t)
	data := []byte("sealed by MinIO too")
	if _, err := c.PutObject(ctx, "bkt", "k", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()}); err != nil {
		t.Fatal(err)
	}
	st, err := c.StatObject(ctx, "bkt", "k", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Metadata.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
		t.Fatalf("SSE header %q, want AES256; metadata %v", got, st.Metadata)
	}
	obj, err := c.GetObject(ctx, "bkt", "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if got, _ := io.ReadAll(obj); !bytes.Equal(got, data) {
		t.Fatalf("read %q", got)
	}
}

// A port taken between New and the first Start is replaced: MinIO says so in its own words
// ("Specified port is already in use"), which the supervisor must recognise.
func TestTakenPortIsReplaced(t *testing.T) {
	s := New(t)
	l, err := net.Listen("tcp", s.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := s.Host
	s.Start(t)
	if s.Host == taken || !strings.HasSuffix(s.Endpoint, s.Host) {
		t.Fatalf("started at %s (%s) with %s taken", s.Host, s.Endpoint, taken)
	}
	s.MakeBucket(t, "bkt")
	if log := s.LogTail(100); !strings.Contains(log, "--address "+taken) || !strings.Contains(log, "port is already in use") {
		t.Errorf("log shows no failed start at %s:\n%s", taken, log)
	}
}
