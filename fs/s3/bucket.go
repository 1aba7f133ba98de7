package s3

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/ssefs/ssefs/fs"
)

func (s *Server) listBuckets(w http.ResponseWriter, req *request) error {
	bs, err := s.e.ListBuckets(req.ctx)
	if err != nil {
		return err
	}
	res := listAllMyBucketsResult{Xmlns: xmlns, Owner: theOwner}
	for _, b := range bs {
		res.Buckets.Bucket = append(res.Buckets.Bucket, bucketEntry{Name: b.Name, CreationDate: isoTime(b.Created)})
	}
	return writeXML(w, &res)
}

// checkBucket fails with NoSuchBucket (or InvalidBucketName for a name no bucket can
// have) unless the request's bucket exists.
func (s *Server) checkBucket(req *request) error {
	ok, err := s.e.BucketExists(req.ctx, req.bucket)
	if err != nil {
		return err
	}
	if !ok {
		return errNoSuchBucket
	}
	return nil
}

// bucketErr answers a bucket sub-resource that is never set: NoSuchBucket first, as S3
// checks the bucket before the sub-resource.
func (s *Server) bucketErr(req *request, err error) error {
	if berr := s.checkBucket(req); berr != nil {
		return berr
	}
	return err
}

// bucketConst answers a bucket sub-resource with a fixed document.
func (s *Server) bucketConst(w http.ResponseWriter, req *request, v any) error {
	if err := s.checkBucket(req); err != nil {
		return err
	}
	switch c := v.(type) {
	case *versioningConfiguration:
		c.Xmlns = xmlns
	case *notificationConfiguration:
		c.Xmlns = xmlns
	}
	return writeXML(w, v)
}

func (s *Server) bucketACL(w http.ResponseWriter, req *request) error {
	if err := s.checkBucket(req); err != nil {
		return err
	}
	return writeXML(w, fullControlACL())
}

func (s *Server) headBucket(w http.ResponseWriter, req *request) error {
	if err := s.checkBucket(req); err != nil {
		return err
	}
	w.Header().Set("X-Amz-Bucket-Region", s.region)
	return nil
}

func (s *Server) createBucket(w http.ResponseWriter, req *request) error {
	if err := fs.ValidBucketName(req.bucket); err != nil {
		return errInvalidBucketName(err.Error())
	}
	if strings.EqualFold(req.r.Header.Get("X-Amz-Bucket-Object-Lock-Enabled"), "true") {
		return errNotImplemented
	}
	data, err := readXMLBody(req.body, maxSmallXML)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) > 0 {
		loc, err := parseCreateBucketConfiguration(data)
		if err != nil {
			return err
		}
		if loc != "" && loc != s.region {
			return newErr("InvalidLocationConstraint", http.StatusBadRequest,
				fmt.Sprintf("The specified location-constraint %q is not valid: this server's region is %q.", loc, s.region))
		}
	}
	// A bucket is a directory: it gets the owner's uid/gid and 0755, never the file mode.
	if err := s.e.CreateBucket(req.ctx, req.bucket, fs.Owner{Uid: s.owner.Uid, Gid: s.owner.Gid}); err != nil {
		return err
	}
	w.Header().Set("Location", "/"+req.bucket)
	return nil
}

// parseCreateBucketConfiguration returns the LocationConstraint of a
// CreateBucketConfiguration document.
func parseCreateBucketConfiguration(data []byte) (string, error) {
	var cfg createBucketConfiguration
	if err := decodeXML(data, &cfg); err != nil {
		return "", err
	}
	return strings.TrimSpace(cfg.LocationConstraint), nil
}

func (s *Server) deleteBucket(w http.ResponseWriter, req *request) error {
	// The engine refuses a bucket with multipart uploads in progress (BucketNotEmpty):
	// deleting it would orphan their parts, and S3 clients abort uploads first anyway.
	if err := s.e.DeleteBucket(req.ctx, req.bucket); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getBucketLocation(w http.ResponseWriter, req *request) error {
	if err := s.checkBucket(req); err != nil {
		return err
	}
	loc := s.region
	if loc == "us-east-1" {
		loc = "" // S3 reports its original region as an empty constraint
	}
	return writeXML(w, &locationConstraint{Xmlns: xmlns, Value: loc})
}

// ---- default encryption ----

// parseSSEConfiguration returns the bucket default key a ServerSideEncryptionConfiguration
// asks for: a KMS key name for aws:kms, "" for AES256 (SSE-S3, the process default).
func parseSSEConfiguration(data []byte) (string, error) {
	var cfg serverSideEncryptionConfiguration
	if err := decodeXML(data, &cfg); err != nil {
		return "", err
	}
	if len(cfg.Rules) != 1 || cfg.Rules[0].ApplyServerSideEncryptionByDefault == nil {
		return "", errMalformedXML("exactly one Rule with ApplyServerSideEncryptionByDefault is required")
	}
	d := cfg.Rules[0].ApplyServerSideEncryptionByDefault
	alg, key := strings.TrimSpace(d.SSEAlgorithm), strings.TrimSpace(d.KMSMasterKeyID)
	switch alg {
	case sseAES256:
		if key != "" {
			return "", errInvalidArgument("KMSMasterKeyID is only valid with SSEAlgorithm aws:kms.")
		}
		return "", nil
	case sseKMS:
		key = strings.TrimPrefix(key, kmsARNPrefix)
		if key == "" {
			// Without a key, aws:kms means the server's default key: the same as AES256 here.
			return "", nil
		}
		return key, nil
	}
	return "", errMalformedXML("SSEAlgorithm must be AES256 or aws:kms")
}

func (s *Server) putBucketEncryption(w http.ResponseWriter, req *request) error {
	data, err := readXMLBody(req.body, maxSmallXML)
	if err != nil {
		return err
	}
	if err := s.checkBucket(req); err != nil {
		return err
	}
	key, err := parseSSEConfiguration(data)
	if err != nil {
		return err
	}
	return s.e.SetBucketEncryption(req.ctx, req.bucket, key)
}

func (s *Server) getBucketEncryption(w http.ResponseWriter, req *request) error {
	if err := s.checkBucket(req); err != nil {
		return err
	}
	key, err := s.e.BucketEncryption(req.ctx, req.bucket)
	if err != nil {
		return err
	}
	if key == "" {
		// SSE-S3 under the process key is what every object gets anyway, but no bucket
		// configuration was set: S3 answers that as "not found", and mc shows it so.
		return errNoEncryptionConfig
	}
	return writeXML(w, &serverSideEncryptionConfiguration{Xmlns: xmlns, Rules: []sseRule{{
		ApplyServerSideEncryptionByDefault: &sseByDefault{SSEAlgorithm: sseKMS, KMSMasterKeyID: kmsARNPrefix + key},
	}}})
}

func (s *Server) deleteBucketEncryption(w http.ResponseWriter, req *request) error {
	if err := s.checkBucket(req); err != nil {
		return err
	}
	if err := s.e.SetBucketEncryption(req.ctx, req.bucket, ""); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
