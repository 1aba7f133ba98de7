package s3

import (
	"errors"
	"net/http"
	"testing"
)

func TestCheckKeyBackslashTraversal(t *testing.T) {
	for key, bad := range map[string]bool{
		`..\x`: true, `a\..\..\x`: true, `.\x`: true, `a/..\x`: true, `a\.`: true, `a\..`: true,
		`a\b`: false, `a\\b`: false, `...\x`: false, `a..\x`: false, `\x`: false, `x\`: false,
	} {
		err := checkKey(key)
		var ae *apiError
		switch {
		case bad && (!errors.As(err, &ae) || ae.Code != "InvalidArgument"):
			t.Errorf("checkKey(%q) = %v, want InvalidArgument", key, err)
		case !bad && err != nil:
			t.Errorf("checkKey(%q) = %v, want nil", key, err)
		}
	}
}

func TestDotBucketsRefused(t *testing.T) {
	en := newEnv(t, false)
	for _, rq := range []struct{ method, path string }{
		{"PUT", "/../x"}, {"PUT", "/%2e%2e/x"}, {"PUT", "/./x"}, {"GET", "/.."}, {"PUT", "/.."},
		{"DELETE", "/../x"}, {"POST", "/..?delete"},
	} {
		resp := en.do(t, rq.method, rq.path, nil, []byte("x"))
		if resp.StatusCode != http.StatusBadRequest || readError(t, resp).Code != "InvalidBucketName" {
			t.Errorf("%s %s: HTTP %d, want 400 InvalidBucketName", rq.method, rq.path, resp.StatusCode)
		}
	}
}

// sizedFail declares a size and fails the test if read.
type sizedFail struct {
	t    *testing.T
	size int64
}

func (s sizedFail) Size() int64 { return s.size }
func (s sizedFail) Read([]byte) (int, error) {
	s.t.Error("a body declared too large was read")
	return 0, errors.New("read")
}

func TestReadXMLBodyRefusesDeclaredSizeUnread(t *testing.T) {
	_, err := readXMLBody(sizedFail{t, 100 << 20}, maxCompleteXML)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != "MalformedXML" {
		t.Errorf("a 100 MiB body: %v, want MalformedXML", err)
	}
}
