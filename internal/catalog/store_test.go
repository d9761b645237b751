package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func storedNames(t *testing.T, s *Store) string {
	t.Helper()
	reg, _, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names(Snapshot{Registry: reg}), ",")
}

// TestStorePutUpserts: Put adds new providers at the end and replaces one of the
// same name where it stands, keeping the stored file's comments.
func TestStorePutUpserts(t *testing.T) {
	f := &fakeS3{}
	s := &Store{API: f, Bucket: "b", Key: DefaultKey}
	ctx := context.Background()
	if _, err := s.Put(ctx, []byte("# partners\n"+file("a", "b"))); err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(file("b", "c"), "https://b.example.com", "https://b2.example.com", 1)
	ch, err := s.Put(ctx, []byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ch.Added, ",") + "/" + strings.Join(ch.Replaced, ","); got != "c/b" {
		t.Errorf("got added/replaced %s, want c/b", got)
	}
	if got := storedNames(t, s); got != "a,b,c" {
		t.Errorf("got stored providers %s, want a,b,c", got)
	}
	if !strings.Contains(string(f.data), "# partners") || !strings.Contains(string(f.data), "b2.example.com") {
		t.Errorf("got stored file\n%s\nwant its comment \"# partners\" and the change (b2.example.com) kept", f.data)
	}
}

// TestStorePutInvalidStoresNothing: a file with any invalid entry is refused with
// every problem, and the stored file is not written.
func TestStorePutInvalidStoresNothing(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a")))
	s := &Store{API: f, Bucket: "b", Key: DefaultKey}
	bad := file("b") + "    colour: blue\n" + "  - name: Bad Name\n    token_url: http://x\n    secret_id: s\n"
	_, err := s.Put(context.Background(), []byte(bad))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "colour") || !strings.Contains(err.Error(), "Bad Name") {
		t.Errorf("got %v, want every problem (unknown field and invalid)", err)
	}
	if _, _, puts := f.counts(); puts != 0 {
		t.Errorf("got %d PutObject calls, want 0", puts)
	}
}

// TestStorePutDuplicateAcrossFiles: a new provider whose parameter collides with a
// stored one is refused by the load of the result, and nothing is stored.
func TestStorePutDuplicateAcrossFiles(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a")))
	s := &Store{API: f, Bucket: "b", Key: DefaultKey}
	clash := file("c") + "    parameter: /token-refresher/tokens/a\n"
	if _, err := s.Put(context.Background(), []byte(clash)); err == nil {
		t.Error("got no error for a parameter used twice, want one")
	}
	if _, _, puts := f.counts(); puts != 0 {
		t.Errorf("got %d PutObject calls, want 0", puts)
	}
}

// TestStoreConflict: a write over a version other than the one read fails with
// ErrConflict, and the other writer's change stays.
func TestStoreConflict(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a")))
	s := &Store{API: &racer{fakeS3: f, other: []byte(file("z"))}, Bucket: "b", Key: DefaultKey}
	_, err := s.Put(context.Background(), []byte(file("b")))
	if !errors.Is(err, ErrConflict) {
		t.Errorf("got %v, want ErrConflict", err)
	}
	if got := string(f.data); got != file("z") {
		t.Errorf("got stored %q, want the other writer's", got)
	}
}

// racer changes the object between a change's read and its write.
type racer struct {
	*fakeS3
	other []byte
}

func (r *racer) PutObject(ctx context.Context, in *s3PutInput, o ...func(*s3Options)) (*s3PutOutput, error) {
	r.mu.Lock()
	r.set(r.other)
	r.mu.Unlock()
	return r.fakeS3.PutObject(ctx, in, o...)
}

// TestStoreRemove: Remove deletes one entry; the last one leaves an empty registry;
// an unknown name is ErrNotFound and stores nothing.
func TestStoreRemove(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a", "b")))
	s := &Store{API: f, Bucket: "b", Key: DefaultKey}
	ctx := context.Background()
	if _, err := s.Remove(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
	if _, _, puts := f.counts(); puts != 0 {
		t.Errorf("got %d PutObject calls for an unknown name, want 0", puts)
	}
	for _, tc := range []struct{ rm, want string }{{"a", "b"}, {"b", ""}} {
		if _, err := s.Remove(ctx, tc.rm); err != nil {
			t.Fatal(err)
		}
		if got := storedNames(t, s); got != tc.want {
			t.Errorf("after rm %s: got %q, want %q", tc.rm, got, tc.want)
		}
	}
	// An emptied registry takes new providers again.
	if _, err := s.Put(ctx, []byte(file("c"))); err != nil {
		t.Fatal(err)
	}
	if got := storedNames(t, s); got != "c" {
		t.Errorf("got %q, want c", got)
	}
}

// TestStoreEntry returns one provider's YAML, or ErrNotFound.
func TestStoreEntry(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a", "b")))
	s := &Store{API: f, Bucket: "b", Key: DefaultKey}
	got, err := s.Entry(context.Background(), "b")
	if err != nil || !strings.Contains(string(got), "name: b") || strings.Contains(string(got), "name: a") {
		t.Errorf("got %q, %v; want b's entry only", got, err)
	}
	if _, err := s.Entry(context.Background(), "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}
