package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.yaml.in/yaml/v4"

	"github.com/token-refresher/token-refresher/internal/registry"
)

// API is the part of the S3 client that changing the registry needs.
type API interface {
	GetAPI
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Errors of Store, checkable with errors.Is.
var (
	// ErrConflict says the registry changed between the read and the write of a
	// change: nothing was stored, and the change can simply be made again.
	ErrConflict = errors.New("the provider registry changed meanwhile; nothing was stored, try again")
	// ErrNotFound says the registry has no provider of that name.
	ErrNotFound = errors.New("no such provider")
	// ErrInvalid says a file given to Put does not load with the strict loader:
	// nothing was stored, and the error lists every problem.
	ErrInvalid = errors.New("invalid provider registry")
)

// Store changes the registry object for tokenctl. Every change is a read, a change
// of the file, a strict load of the result and a write conditional on the version
// read: the stored file is always one the function can load, and a concurrent
// change makes the later writer fail with ErrConflict instead of being lost.
type Store struct {
	API API
	// Bucket and Key name the registry object.
	Bucket, Key string
	// Options are the deployment's registry settings, which every change must load with.
	Options registry.Options
}

// Document is the stored file as read.
type Document struct {
	// Data is the file; empty when there is no object.
	Data []byte
	// Exists says the object exists; ETag and VersionID identify it.
	Exists    bool
	ETag      string
	VersionID string
}

// Read returns the stored file.
func (s *Store) Read(ctx context.Context) (Document, error) {
	out, err := s.API.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key)})
	if err != nil {
		if isMissing(err) {
			return Document{}, nil
		}
		return Document{}, fmt.Errorf("read s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	defer out.Body.Close()
	data, err := readAll(out.Body)
	if err != nil {
		return Document{}, fmt.Errorf("read s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	return Document{Data: data, Exists: true, ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionId)}, nil
}

// Load returns the stored registry: nil when there are no providers.
func (s *Store) Load(ctx context.Context) (*registry.Registry, Document, error) {
	doc, err := s.Read(ctx)
	if err != nil {
		return nil, doc, err
	}
	reg, err := parse(doc.Data, s.Options)
	if err != nil {
		return nil, doc, fmt.Errorf("s3://%s/%s (version %s): %w", s.Bucket, s.Key, doc.VersionID, err)
	}
	return reg, doc, nil
}

// Entry returns the YAML of the named provider's entry as stored.
func (s *Store) Entry(ctx context.Context, name string) ([]byte, error) {
	doc, err := s.Read(ctx)
	if err != nil {
		return nil, err
	}
	_, list, err := entries(doc.Data)
	if err != nil {
		return nil, err
	}
	i := indexOf(list, name)
	if i < 0 {
		return nil, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	return yaml.Marshal(list.Content[i])
}

// Change is what a stored change did.
type Change struct {
	// Added and Replaced name the providers a Put added and replaced.
	Added, Replaced []string
	// VersionID is the object version written.
	VersionID string
}

// Put upserts every provider of file, a registry that must load on its own, by
// name into the stored file: an entry of the same name is replaced where it
// stands, a new one is appended. Nothing is stored when file or the result does
// not load.
func (s *Store) Put(ctx context.Context, file []byte) (Change, error) {
	if _, err := registry.Load(bytes.NewReader(file), s.Options); err != nil {
		return Change{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	fileRoot, incoming, err := entries(file)
	if err != nil {
		return Change{}, err
	}
	doc, err := s.Read(ctx)
	if err != nil {
		return Change{}, err
	}
	if len(bytes.TrimSpace(doc.Data)) == 0 {
		// The first file is stored as written, comments and all.
		ch := Change{Added: namesOf(incoming)}
		ch.VersionID, err = s.write(ctx, doc, fileRoot)
		return ch, err
	}
	root, list, err := entries(doc.Data)
	if err != nil {
		return Change{}, fmt.Errorf("stored registry s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	var ch Change
	for _, item := range incoming.Content {
		name := nameOf(item)
		if i := indexOf(list, name); i >= 0 {
			list.Content[i] = item
			ch.Replaced = append(ch.Replaced, name)
		} else {
			list.Content = append(list.Content, item)
			ch.Added = append(ch.Added, name)
		}
	}
	ch.VersionID, err = s.write(ctx, doc, root)
	return ch, err
}

// Remove deletes the named provider's entry. The function then no longer refreshes
// it; its published token stays until it expires.
func (s *Store) Remove(ctx context.Context, name string) (Change, error) {
	doc, err := s.Read(ctx)
	if err != nil {
		return Change{}, err
	}
	root, list, err := entries(doc.Data)
	if err != nil {
		return Change{}, fmt.Errorf("stored registry s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	i := indexOf(list, name)
	if i < 0 {
		return Change{}, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	list.Content = slices.Delete(list.Content, i, i+1)
	v, err := s.write(ctx, doc, root)
	return Change{VersionID: v}, err
}

// write stores root after checking that it loads, over exactly the version read.
func (s *Store) write(ctx context.Context, read Document, root *yaml.Node) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return "", fmt.Errorf("encode registry: %w", err)
	}
	if _, err := parse(buf.Bytes(), s.Options); err != nil {
		return "", fmt.Errorf("the changed registry does not load, nothing was stored: %w", err)
	}
	in := &s3.PutObjectInput{
		Bucket:               aws.String(s.Bucket),
		Key:                  aws.String(s.Key),
		Body:                 bytes.NewReader(buf.Bytes()),
		ContentType:          aws.String("application/yaml"),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	}
	if read.Exists {
		in.IfMatch = aws.String(read.ETag)
	} else {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := s.API.PutObject(ctx, in)
	if err != nil {
		if st := httpStatus(err); st == statusPreconditionFailed || st == statusConflict {
			return "", fmt.Errorf("%w (%w)", ErrConflict, err)
		}
		return "", fmt.Errorf("write s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	return aws.ToString(out.VersionId), nil
}

// entries parses a registry file into its document and its providers list, which
// it creates in an empty file, so that changes edit the file in place and keep its
// comments and order.
func entries(data []byte) (root, list *yaml.Node, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		*m = yaml.Node{Kind: yaml.MappingNode}
	}
	if m.Kind != yaml.MappingNode {
		return nil, nil, errors.New(`want a mapping with a "providers" list`)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "providers" {
			list = m.Content[i+1]
		}
	}
	if list == nil {
		list = &yaml.Node{Kind: yaml.SequenceNode}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "providers"}, list)
	}
	if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		*list = yaml.Node{Kind: yaml.SequenceNode}
	}
	if list.Kind != yaml.SequenceNode {
		return nil, nil, errors.New(`"providers" must be a list`)
	}
	list.Style = 0 // an emptied "providers: []" grows into a block list
	return &doc, list, nil
}

func indexOf(list *yaml.Node, name string) int {
	return slices.IndexFunc(list.Content, func(n *yaml.Node) bool { return nameOf(n) == name })
}

func namesOf(list *yaml.Node) []string {
	var out []string
	for _, n := range list.Content {
		out = append(out, nameOf(n))
	}
	return out
}

// nameOf is an entry's name; "" for an entry without one (which does not load).
func nameOf(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			return n.Content[i+1].Value
		}
	}
	return ""
}
