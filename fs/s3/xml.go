package s3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	xmlns = "http://s3.amazonaws.com/doc/2006-03-01/"

	// Bounds of XML request bodies. A Delete of 1000 keys of up to 1024 bytes each,
	// escaped, and a Complete of 10000 parts with checksums fit; beyond, MalformedXML.
	maxSmallXML    = 64 << 10
	maxDeleteXML   = 2 << 20
	maxCompleteXML = 4 << 20
	// maxXMLTokens bounds the elements, attributes' holders and text runs of one
	// request body, and maxXMLDepth its nesting: what is legitimate is far below.
	maxXMLTokens = 200_000
	maxXMLDepth  = 16

	iso8601Millis = "2006-01-02T15:04:05.000Z"
)

// readXMLBody reads a whole request body of at most max bytes. Reading to the end is
// what makes sigv4 check its digests and signatures before anything acts on it.
//
// A body that declares more than max (Content-Length, or x-amz-decoded-content-length
// of a streamed one) is refused before a byte of it is read: a 100 MiB document would
// otherwise be read, 4 MiB of it into memory, only to be refused. Nothing acts on it,
// so refusing it unverified is safe.
func readXMLBody(body io.Reader, max int64) ([]byte, error) {
	if s, ok := body.(interface{ Size() int64 }); ok && s.Size() > max {
		return nil, errMalformedXML(fmt.Sprintf("the body of %d bytes exceeds %d bytes", s.Size(), max))
	}
	data, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errMalformedXML(fmt.Sprintf("the body exceeds %d bytes", max))
	}
	return data, nil
}

// decodeXML unmarshals data into v after checking, in a streaming pass, that it holds
// a bounded number of tokens and nesting levels, so an absurd document costs little.
func decodeXML(data []byte, v any) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	depth, n := 0, 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errMalformedXML(err.Error())
		}
		if n++; n > maxXMLTokens {
			return errMalformedXML("too many elements")
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth++; depth > maxXMLDepth {
				return errMalformedXML("nested too deeply")
			}
		case xml.EndElement:
			depth--
		}
	}
	if err := xml.Unmarshal(data, v); err != nil {
		return errMalformedXML(err.Error())
	}
	return nil
}

// writeXML answers 200 with v as an XML document.
func writeXML(w http.ResponseWriter, v any) error {
	body, err := xml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the response: %w", err)
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	w.Write(body)
	return nil
}

func isoTime(t time.Time) string { return t.UTC().Format(iso8601Millis) }

// ---- owner and ACL ----

// The single owner of everything: ssefs has one tenant. The ID is a fixed 64-hex
// canonical user ID, as clients expect the format.
const (
	ownerID   = "5ce5ef55ce5ef55ce5ef55ce5ef55ce5ef55ce5ef55ce5ef55ce5ef55ce5ef55"
	ownerName = "ssefs"
)

type owner struct {
	ID          string
	DisplayName string
}

var theOwner = owner{ID: ownerID, DisplayName: ownerName}

type grantee struct {
	XMLNSXSI    string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string
	DisplayName string
}

type grant struct {
	Grantee    grantee
	Permission string
}

type accessControlPolicy struct {
	XMLName           xml.Name `xml:"AccessControlPolicy"`
	Xmlns             string   `xml:"xmlns,attr"`
	Owner             owner
	AccessControlList struct {
		Grant []grant
	}
}

func fullControlACL() *accessControlPolicy {
	p := &accessControlPolicy{Xmlns: xmlns, Owner: theOwner}
	p.AccessControlList.Grant = []grant{{
		Grantee:    grantee{XMLNSXSI: "http://www.w3.org/2001/XMLSchema-instance", Type: "CanonicalUser", ID: ownerID, DisplayName: ownerName},
		Permission: "FULL_CONTROL",
	}}
	return p
}

// ---- buckets ----

type listAllMyBucketsResult struct {
	XMLName xml.Name `xml:"ListAllMyBucketsResult"`
	Xmlns   string   `xml:"xmlns,attr"`
	Owner   owner
	Buckets struct {
		Bucket []bucketEntry
	}
}

type bucketEntry struct {
	Name         string
	CreationDate string
}

type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint string
}

type locationConstraint struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	Xmlns   string   `xml:"xmlns,attr"`
	Value   string   `xml:",chardata"`
}

type versioningConfiguration struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	Xmlns   string   `xml:"xmlns,attr"`
}

type notificationConfiguration struct {
	XMLName xml.Name `xml:"NotificationConfiguration"`
	Xmlns   string   `xml:"xmlns,attr"`
}

type tagging struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr"`
	TagSet  struct{}
}

type sseByDefault struct {
	SSEAlgorithm   string
	KMSMasterKeyID string `xml:",omitempty"`
}

type sseRule struct {
	ApplyServerSideEncryptionByDefault *sseByDefault
	BucketKeyEnabled                   *bool `xml:",omitempty"`
}

type serverSideEncryptionConfiguration struct {
	XMLName xml.Name  `xml:"ServerSideEncryptionConfiguration"`
	Xmlns   string    `xml:"xmlns,attr,omitempty"`
	Rules   []sseRule `xml:"Rule"`
}

// ---- listing ----

type listEntry struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *owner `xml:",omitempty"`
}

type commonPrefix struct {
	Prefix string
}

type listBucketResult struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Xmlns                 string   `xml:"xmlns,attr"`
	Name                  string
	Prefix                string
	Marker                *string `xml:",omitempty"`
	NextMarker            string  `xml:",omitempty"`
	ContinuationToken     string  `xml:",omitempty"`
	NextContinuationToken string  `xml:",omitempty"`
	StartAfter            string  `xml:",omitempty"`
	KeyCount              *int    `xml:",omitempty"`
	MaxKeys               int
	Delimiter             string `xml:",omitempty"`
	EncodingType          string `xml:",omitempty"`
	IsTruncated           bool
	Contents              []listEntry
	CommonPrefixes        []commonPrefix
}

// listVersionsResult is ListObjectVersions' answer. Buckets are never versioned, so
// every object is one version, "null", the latest, and there are no delete markers.
type listVersionsResult struct {
	XMLName             xml.Name `xml:"ListVersionsResult"`
	Xmlns               string   `xml:"xmlns,attr"`
	Name                string
	Prefix              string
	KeyMarker           string
	VersionIdMarker     string
	NextKeyMarker       string `xml:",omitempty"`
	NextVersionIdMarker string `xml:",omitempty"`
	MaxKeys             int
	Delimiter           string `xml:",omitempty"`
	EncodingType        string `xml:",omitempty"`
	IsTruncated         bool
	Versions            []versionEntry `xml:"Version"`
	CommonPrefixes      []commonPrefix
}

type versionEntry struct {
	Key          string
	VersionId    string
	IsLatest     bool
	LastModified string
	ETag         string
	Size         int64
	Owner        owner
	StorageClass string
}

// ---- deleting many ----

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool
	Objects []struct {
		Key       string
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deletedEntry struct {
	Key string
}

type deleteError struct {
	Key     string
	Code    string
	Message string
}

type deleteResult struct {
	XMLName xml.Name `xml:"DeleteResult"`
	Xmlns   string   `xml:"xmlns,attr"`
	Deleted []deletedEntry
	Error   []deleteError
}

// ---- copying ----

type copyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	ETag         string
	LastModified string
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	ETag         string
	LastModified string
}

// ---- multipart ----

type initiateMultipartUploadResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string
	Key      string
	UploadID string `xml:"UploadId"`
}

type completeMultipartUpload struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int
		ETag       string
	} `xml:"Part"`
}

type completeMultipartUploadResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Location string
	Bucket   string
	Key      string
	ETag     string
}

type partEntry struct {
	PartNumber   int
	LastModified string
	ETag         string
	Size         int64
}

type listPartsResult struct {
	XMLName              xml.Name `xml:"ListPartsResult"`
	Xmlns                string   `xml:"xmlns,attr"`
	Bucket               string
	Key                  string
	UploadID             string `xml:"UploadId"`
	Initiator            owner
	Owner                owner
	StorageClass         string
	PartNumberMarker     int
	NextPartNumberMarker int
	MaxParts             int
	IsTruncated          bool
	Parts                []partEntry `xml:"Part"`
}

type uploadEntry struct {
	Key          string
	UploadID     string `xml:"UploadId"`
	Initiator    owner
	Owner        owner
	StorageClass string
	Initiated    string
}

type listMultipartUploadsResult struct {
	XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
	Xmlns              string   `xml:"xmlns,attr"`
	Bucket             string
	KeyMarker          string
	UploadIDMarker     string `xml:"UploadIdMarker"`
	NextKeyMarker      string
	NextUploadIDMarker string `xml:"NextUploadIdMarker"`
	Prefix             string
	EncodingType       string `xml:",omitempty"`
	MaxUploads         int
	IsTruncated        bool
	Uploads            []uploadEntry `xml:"Upload"`
}
