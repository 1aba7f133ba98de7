package dare

import (
	"bytes"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"testing"

	"github.com/minio/sio"
)

var sizes = []int{1, 32, 4096, MaxPayload - 1, MaxPayload, MaxPayload + 1, 3*MaxPayload + 17, 1 << 20}

func testKey(t testing.TB) *[32]byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return &k
}

func sioConfig(key *[32]byte, suite byte, random []byte) sio.Config {
	return sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20,
		CipherSuites: []byte{suite}, Key: key[:], Rand: bytes.NewReader(random)}
}

func plaintext(n int) []byte {
	p := make([]byte, n)
	r := mrand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(p)
	return p
}

// The stream Seal makes is the one sio makes from the same nonce, byte for byte, for
// both cipher suites and every shape of stream (one package, full packages, a short tail).
func TestSealIsSio(t *testing.T) {
	for _, suite := range []byte{AES256GCM, ChaCha20Poly1305} {
		for _, n := range sizes {
			key, plain, nonce := testKey(t), plaintext(n), plaintext(12)
			var want bytes.Buffer
			if _, err := sio.Encrypt(&want, bytes.NewReader(plain), sioConfig(key, suite, nonce)); err != nil {
				t.Fatal(err)
			}
			got, err := Seal([]byte("prefix"), key, suite, plain, bytes.NewReader(nonce))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want.Bytes()) {
				t.Fatalf("suite %d, %d bytes: Seal differs from sio.Encrypt", suite, n)
			}
			if SealedSize(n) != want.Len() {
				t.Fatalf("SealedSize(%d) = %d, sio made %d", n, SealedSize(n), want.Len())
			}
			if es, _ := sio.EncryptedSize(uint64(n)); int(es) != SealedSize(n) {
				t.Fatalf("SealedSize(%d) = %d, sio.EncryptedSize says %d", n, SealedSize(n), es)
			}
		}
	}
	if SealedSize(0) != 0 {
		t.Fatalf("SealedSize(0) = %d", SealedSize(0))
	}
}

// OpenAll reads what sio sealed, and sio reads what Seal sealed.
func TestOpenAllReadsSio(t *testing.T) {
	for _, n := range sizes {
		key, plain := testKey(t), plaintext(n)
		var sealed bytes.Buffer
		if _, err := sio.Encrypt(&sealed, bytes.NewReader(plain), sioConfig(key, AES256GCM, plaintext(12))); err != nil {
			t.Fatal(err)
		}
		got, err := OpenAll(nil, key, sealed.Bytes())
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: OpenAll = %d bytes, %v", n, len(got), err)
		}
		ours, err := Seal(nil, key, ChaCha20Poly1305, plain, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		back, err := sio.DecryptBuffer(nil, ours, sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20, Key: key[:],
			CipherSuites: []byte{AES256GCM, ChaCha20Poly1305}})
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("%d bytes: sio could not read Seal's stream: %v", n, err)
		}
	}
}

// An Opener started at package k with sequence number k reads the rest of the stream,
// and knows the final package when it meets it.
func TestOpenerFromAnyPackage(t *testing.T) {
	key, plain := testKey(t), plaintext(5*MaxPayload+100)
	sealed, err := Seal(nil, key, AES256GCM, plain, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k <= 5; k++ {
		o := NewOpener(key, uint32(k))
		src := sealed[k*MaxPackage:]
		var got []byte
		buf := make([]byte, MaxPayload)
		for len(src) > 0 {
			p, n, err := o.Open(buf, src)
			if err != nil {
				t.Fatalf("from package %d: %v", k, err)
			}
			got = append(got, buf[:p]...)
			src = src[n:]
		}
		if !o.Final() || !bytes.Equal(got, plain[k*MaxPayload:]) {
			t.Fatalf("from package %d: final %v, plaintext equal %v", k, o.Final(), bytes.Equal(got, plain[k*MaxPayload:]))
		}
	}
	// The wrong sequence number is a different nonce: the tag fails.
	if _, _, err := NewOpener(key, 1).Open(make([]byte, MaxPayload), sealed[2*MaxPackage:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("package 2 opened as number 1: %v", err)
	}
}

// Every way of changing a stream is ErrAuth, never other bytes.
func TestTamperIsErrAuth(t *testing.T) {
	key, plain := testKey(t), plaintext(3*MaxPayload+10)
	sealed, err := Seal(nil, key, AES256GCM, plain, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Seal(nil, key, AES256GCM, plain, rand.Reader) // same key and plaintext, another nonce
	if err != nil {
		t.Fatal(err)
	}
	mutate := map[string]func([]byte) []byte{
		"flip a payload byte": func(b []byte) []byte { b[HeaderSize+7] ^= 1; return b },
		"flip a tag byte":     func(b []byte) []byte { b[MaxPackage-1] ^= 0x80; return b },
		"flip the version":    func(b []byte) []byte { b[0] ^= 1; return b },
		"flip the suite":      func(b []byte) []byte { b[1] = ChaCha20Poly1305; return b },
		"flip a nonce byte":   func(b []byte) []byte { b[9] ^= 4; return b },
		"mark final early":    func(b []byte) []byte { b[4] |= finalFlag; return b },
		"swap two packages": func(b []byte) []byte {
			p0 := bytes.Clone(b[:MaxPackage])
			copy(b[:MaxPackage], b[MaxPackage:2*MaxPackage])
			copy(b[MaxPackage:2*MaxPackage], p0)
			return b
		},
		"package from another stream": func(b []byte) []byte { copy(b[MaxPackage:2*MaxPackage], other[MaxPackage:]); return b },
		"cut the final package":       func(b []byte) []byte { return b[:3*MaxPackage] },
		"cut inside a package":        func(b []byte) []byte { return b[:len(b)-1] },
		"append a package":            func(b []byte) []byte { return append(b, other[3*MaxPackage:]...) },
		"shorten a length":            func(b []byte) []byte { b[2]--; return b },
	}
	for name, m := range mutate {
		bad := m(bytes.Clone(sealed))
		if got, err := OpenAll(nil, key, bad); err == nil {
			t.Errorf("%s: opened %d bytes", name, len(got))
		} else if !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", name, err)
		}
	}
	wrongKey := testKey(t)
	if _, err := OpenAll(nil, wrongKey, sealed); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
}

// Sealing a small value allocates only what it returns and the cipher: no 64 KiB buffer.
func TestSealSmallAllocatesLittle(t *testing.T) {
	key, plain := testKey(t), plaintext(32)
	dst := make([]byte, 0, SealedSize(32))
	var got []byte
	allocs := testing.AllocsPerRun(100, func() {
		got, _ = Seal(dst[:0], key, AES256GCM, plain, rand.Reader)
	})
	if len(got) != SealedSize(32) {
		t.Fatalf("sealed %d bytes", len(got))
	}
	if allocs > 8 { // the cipher's own; a 64 KiB buffer would be one, but 64 KiB of it
		t.Fatalf("Seal of 32 bytes: %.0f allocations", allocs)
	}
}

// FuzzOpenAll: untrusted bytes never panic, and OpenAll accepts exactly what sio accepts.
func FuzzOpenAll(f *testing.F) {
	key := &[32]byte{1, 2, 3}
	for _, n := range []int{1, 40, MaxPayload + 5} {
		s, _ := Seal(nil, key, AES256GCM, plaintext(n), rand.Reader)
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := OpenAll(nil, key, b)
		if len(b) < HeaderSize+TagSize+1 {
			// sio.DecryptBuffer panics on less than a header (sio v0.4.1); no package
			// fits in this, so it can only be refused.
			if err == nil {
				t.Fatalf("OpenAll opened %d bytes, shorter than any package", len(b))
			}
			return
		}
		want, werr := sio.DecryptBuffer(nil, b, sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20,
			Key: key[:], CipherSuites: []byte{AES256GCM, ChaCha20Poly1305}})
		if (err == nil) != (werr == nil) {
			t.Fatalf("OpenAll err %v, sio err %v", err, werr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatal("OpenAll and sio disagree on the plaintext")
		}
	})
}

func BenchmarkSeal4KiB(b *testing.B) {
	key, plain := testKey(b), plaintext(4096)
	dst := make([]byte, 0, SealedSize(4096))
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(dst[:0], key, AES256GCM, plain, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSio4KiB(b *testing.B) {
	key, plain := testKey(b), plaintext(4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		var out bytes.Buffer
		r, _ := sio.EncryptReader(bytes.NewReader(plain), sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20,
			CipherSuites: []byte{AES256GCM}, Key: key[:]})
		if _, err := out.ReadFrom(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenPackage(b *testing.B) {
	key, plain := testKey(b), plaintext(4*MaxPayload)
	sealed, _ := Seal(nil, key, AES256GCM, plain, rand.Reader)
	dst := make([]byte, MaxPayload)
	b.SetBytes(MaxPayload)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := NewOpener(key, 2).Open(dst, sealed[2*MaxPackage:]); err != nil {
			b.Fatal(err)
		}
	}
}
