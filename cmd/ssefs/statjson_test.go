package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestStatJSON(t *testing.T) {
	full, err := parseEncryptionXattr("type=SSE-KMS key=photo-key algorithm=DAREv2-HMAC-SHA256 cipher=AES-256-GCM bucket=photos " +
		"chunk-size=1048576 sealed-at=2026-11-25T22:00:00Z chunks=3 stored-bytes=3001472 context=eyJkZXB0IjoiciZkIn0")
	if err != nil {
		t.Fatal(err)
	}
	// What an older mount, or an SSE-C file, leaves out is null.
	sparse, err := parseEncryptionXattr("type=SSE-C key= sealed-at=unknown")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, []statJSON{
		toStatJSON(fileStat{Name: "/mnt/photos/<a&b>.jpg", Size: 3000000, Enc: full}),
		toStatJSON(fileStat{Name: "/mnt/x", Size: 0, Enc: sparse}),
	}); err != nil {
		t.Fatal(err)
	}
	want := `[
  {
    "name": "/mnt/photos/<a&b>.jpg",
    "size": 3000000,
    "bucket": "photos",
    "sse": "SSE-KMS",
    "key": "photo-key",
    "context": {
      "dept": "r&d"
    },
    "algorithm": "DAREv2-HMAC-SHA256",
    "cipher": "AES-256-GCM",
    "chunk_size": 1048576,
    "sealed_at": "2026-11-25T22:00:00Z",
    "chunks": 3,
    "stored_bytes": 3001472
  },
  {
    "name": "/mnt/x",
    "size": 0,
    "bucket": null,
    "sse": "SSE-C",
    "key": null,
    "context": null,
    "algorithm": null,
    "cipher": null,
    "chunk_size": null,
    "sealed_at": null,
    "chunks": null,
    "stored_bytes": null
  }
]
`
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// stat --json of files off a mount: an empty array on stdout, the failures on stderr.
func TestStatJSONOutsideAMount(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd("stat", "--json", file)
	if r.code != 1 || r.stdout != "[]\n" || r.stderr != "ssefs: "+file+": not a file on an ssefs mount\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
