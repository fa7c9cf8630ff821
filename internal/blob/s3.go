package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config names an S3-compatible bucket (AWS S3, MinIO, Ceph, R2…).
type S3Config struct {
	// Endpoint is the service's base URL, e.g. https://s3.eu-central-1.amazonaws.com
	// or http://127.0.0.1:9000. Required.
	Endpoint string
	// Region signs the requests; most S3-compatible stores accept any
	// (default us-east-1).
	Region string
	// Bucket holds the objects. Required.
	Bucket string
	// AccessKey and SecretKey authenticate (static credentials).
	AccessKey, SecretKey string
	// Prefix is put before every key (e.g. "abacus/"), so several
	// deployments can share a bucket.
	Prefix string
	// VirtualHosted addresses the bucket as a host name
	// (bucket.endpoint) instead of the path style (endpoint/bucket) that
	// every S3-compatible store understands.
	VirtualHosted bool
	// CreateBucket creates the bucket on open when it does not exist.
	CreateBucket bool
	// HTTPClient is the client requests go through (default: one with
	// the standard transport).
	HTTPClient *http.Client
}

// Validate reports the first missing or malformed field by its config key.
func (c S3Config) Validate() error {
	switch {
	case c.Endpoint == "":
		return fmt.Errorf("blob.s3_endpoint: must be set, e.g. https://s3.eu-central-1.amazonaws.com")
	case !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://"):
		return fmt.Errorf("blob.s3_endpoint: %q must start with http:// or https://", c.Endpoint)
	case c.Bucket == "":
		return fmt.Errorf("blob.s3_bucket: must be set when blob.s3_endpoint is")
	case c.Prefix != "" && CheckKey(strings.TrimSuffix(c.Prefix, "/")) != nil:
		return fmt.Errorf("blob.s3_prefix: %q must be a valid key path such as abacus/", c.Prefix)
	}
	return nil
}

// S3 is a Store in an S3-compatible bucket: one object per key (under
// Prefix). A PUT is atomic in S3: a reader sees the old object or the
// new one, never a torn one.
type S3 struct {
	client *s3.Client
	bucket string
	prefix string
}

// NewS3 returns a Store in cfg's bucket after checking it can be reached
// (HeadBucket; with CreateBucket, a missing bucket is created).
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	opts := s3.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: !cfg.VirtualHosted,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		// Checksums only where S3 requires them: stores that do not
		// speak the newer trailing-checksum encoding still accept PUTs.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	st := &S3{client: s3.New(opts), bucket: cfg.Bucket, prefix: cfg.Prefix}
	_, err := st.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)})
	if err != nil && cfg.CreateBucket && isMissing(err) {
		_, err = st.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(cfg.Bucket)})
	}
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	return st, nil
}

func (s *S3) key(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		if isMissing(err) {
			return nil, fmt.Errorf("reading %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if out.ContentLength != nil && *out.ContentLength > 0 {
		buf.Grow(int(*out.ContentLength))
	}
	if _, err := io.Copy(&buf, out.Body); err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return buf.Bytes(), nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil && !isMissing(err) {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// isMissing reports an S3 answer meaning "no such key or bucket".
func isMissing(err error) bool {
	var nk *types.NoSuchKey
	var nb *types.NoSuchBucket
	var nf *types.NotFound
	if errors.As(err, &nk) || errors.As(err, &nb) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NoSuchBucket", "NotFound":
			return true
		}
	}
	return false
}
