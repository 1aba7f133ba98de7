package s3

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Observer is told of every S3 request when it has been answered: the S3 API it called
// (ListBuckets, PutObject, ..., "Unknown"; a bounded set of names, never a bucket or a
// key), the HTTP status it got, and when it began. Status 0 means the response was cut
// off after its header went out (a GET whose object failed midway, a client gone). It runs
// on the request's goroutine, so it must be cheap and safe for concurrent use.
type Observer interface {
	Request(api string, status int, start time.Time)
}

// observe reports req to the observer. It is deferred by ServeHTTP, outside the handler's
// own recovery, so the only panic it sees is http.ErrAbortHandler, which it passes on.
func (s *Server) observe(req *request, w *statusWriter, start time.Time) {
	if p := recover(); p != nil {
		s.obs.Request(apiName(req.r, req.bucket, req.key), 0, start)
		panic(p)
	}
	s.obs.Request(apiName(req.r, req.bucket, req.key), w.status, start)
}

// The health endpoints MinIO serves on its S3 port, where load balancers probe it. They
// need no credentials, as MinIO's do.
const (
	healthLivePath  = "/minio/health/live"
	healthReadyPath = "/minio/health/ready"
	// healthTimeout bounds a readiness check: a probe that hangs is as bad as a failed one.
	healthTimeout = 5 * time.Second
)

// serveHealth answers the health endpoints and reports whether r was one. live is 200
// while the server answers at all; ready is 200 when Config.Ready finds the store
// working, else 503 with the reason. A signed request to the same path is an S3 request
// for bucket "minio" and is left to the S3 API.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != healthLivePath && r.URL.Path != healthReadyPath ||
		r.Method != http.MethodGet && r.Method != http.MethodHead ||
		r.Header.Get("Authorization") != "" || r.URL.Query().Has("X-Amz-Signature") {
		return false
	}
	w.Header().Set("Server", "ssefs")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == healthReadyPath && s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			if r.Method == http.MethodGet {
				w.Write([]byte(strings.ReplaceAll(err.Error(), "\n", " ") + "\n"))
			}
			return true
		}
	}
	w.WriteHeader(http.StatusOK)
	return true
}

// bucketSubresources name the bucket APIs of the sub-resources S3 has, as AWS's API
// reference names them: Get, Put or Delete and this.
var bucketSubresources = []struct{ query, name string }{
	{"location", "BucketLocation"},
	{"encryption", "BucketEncryption"},
	{"versioning", "BucketVersioning"},
	{"notification", "BucketNotificationConfiguration"},
	{"acl", "BucketAcl"},
	{"policy", "BucketPolicy"},
	{"tagging", "BucketTagging"},
	{"object-lock", "ObjectLockConfiguration"},
	{"lifecycle", "BucketLifecycleConfiguration"},
	{"cors", "BucketCors"},
	{"website", "BucketWebsite"},
	{"replication", "BucketReplication"},
	{"logging", "BucketLogging"},
	{"accelerate", "BucketAccelerateConfiguration"},
	{"requestPayment", "BucketRequestPayment"},
	{"ownershipControls", "BucketOwnershipControls"},
	{"publicAccessBlock", "PublicAccessBlock"},
	{"policyStatus", "BucketPolicyStatus"},
	{"analytics", "BucketAnalyticsConfiguration"},
	{"inventory", "BucketInventoryConfiguration"},
	{"metrics", "BucketMetricsConfiguration"},
	{"intelligent-tiering", "BucketIntelligentTieringConfiguration"},
}

// objectSubresources are the object APIs named the same way.
var objectSubresources = []struct{ query, name string }{
	{"acl", "ObjectAcl"},
	{"tagging", "ObjectTagging"},
	{"retention", "ObjectRetention"},
	{"legal-hold", "ObjectLegalHold"},
	{"attributes", "ObjectAttributes"},
	{"torrent", "ObjectTorrent"},
}

var methodVerb = map[string]string{http.MethodGet: "Get", http.MethodHead: "Get", http.MethodPut: "Put", http.MethodDelete: "Delete"}

// apiName names the S3 API a request calls, as S3's protocol defines it (method, bucket
// or object, sub-resource, copy source): the name does not depend on whether ssefs
// implements the call, so it stays right as the router grows.
func apiName(r *http.Request, bucket, key string) string {
	q := r.URL.Query()
	has := func(n string) bool { _, ok := q[n]; return ok }
	m := r.Method
	switch {
	case bucket == "":
		if m == http.MethodGet {
			return "ListBuckets"
		}
		return "Unknown"
	case key == "":
		switch {
		case m == http.MethodGet && has("uploads"):
			return "ListMultipartUploads"
		case m == http.MethodGet && has("versions"):
			return "ListObjectVersions"
		case m == http.MethodPost && has("delete"):
			return "DeleteObjects"
		case m == http.MethodPost:
			return "PostObject"
		}
		if verb, ok := methodVerb[m]; ok {
			for _, sr := range bucketSubresources {
				if has(sr.query) {
					return verb + sr.name
				}
			}
		}
		switch m {
		case http.MethodGet:
			if q.Get("list-type") == "2" {
				return "ListObjectsV2"
			}
			return "ListObjects"
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodPut:
			return "CreateBucket"
		case http.MethodDelete:
			return "DeleteBucket"
		}
		return "Unknown"
	}
	copySource := r.Header.Get("X-Amz-Copy-Source") != ""
	switch {
	case m == http.MethodGet && has("uploadId"):
		return "ListParts"
	case m == http.MethodPut && (has("partNumber") || has("uploadId")):
		if copySource {
			return "UploadPartCopy"
		}
		return "UploadPart"
	case m == http.MethodDelete && has("uploadId"):
		return "AbortMultipartUpload"
	case m == http.MethodPost && has("uploads"):
		return "CreateMultipartUpload"
	case m == http.MethodPost && has("uploadId"):
		return "CompleteMultipartUpload"
	case m == http.MethodPost && has("restore"):
		return "RestoreObject"
	case m == http.MethodPost && has("select"):
		return "SelectObjectContent"
	case m == http.MethodPut && has("renameObject"):
		return "RenameObject"
	}
	if verb, ok := methodVerb[m]; ok {
		for _, sr := range objectSubresources {
			if has(sr.query) {
				return verb + sr.name
			}
		}
	}
	switch m {
	case http.MethodGet:
		return "GetObject"
	case http.MethodHead:
		return "HeadObject"
	case http.MethodPut:
		if copySource {
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodDelete:
		return "DeleteObject"
	}
	return "Unknown"
}
