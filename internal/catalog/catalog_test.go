package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func entry(name string) string {
	return "  - name: " + name + "\n    token_url: https://" + name + ".example.com/token\n    secret_id: token-refresher/" + name + "\n"
}

func file(names ...string) string {
	var b strings.Builder
	b.WriteString("providers:\n")
	for _, n := range names {
		b.WriteString(entry(n))
	}
	return b.String()
}

func names(s Snapshot) []string {
	if s.Registry == nil {
		return nil
	}
	var out []string
	for _, p := range s.Registry.Providers() {
		out = append(out, p.Name)
	}
	return out
}

func newReader(f *fakeS3) *Reader { return &Reader{API: f, Bucket: "b", Key: DefaultKey} }

// TestReaderUnchangedIsOneConditionalCall: once read, an unchanged registry costs one
// GetObject per run, answered 304, and the same registry is returned.
func TestReaderUnchangedIsOneConditionalCall(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a", "b")))
	r := newReader(f)
	ctx := context.Background()
	first, err := r.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := r.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Registry != first.Registry || got.ETag != first.ETag {
			t.Errorf("got registry %p etag %s, want the cached %p %s", got.Registry, got.ETag, first.Registry, first.ETag)
		}
	}
	if gets, notMod, _ := f.counts(); gets != 4 || notMod != 3 {
		t.Errorf("got %d GetObject calls, %d answered 304; want 4 and 3", gets, notMod)
	}
}

// TestReaderPicksUpChange: a new version is read by the next call.
func TestReaderPicksUpChange(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a")))
	r := newReader(f)
	ctx := context.Background()
	if _, err := r.Current(ctx); err != nil {
		t.Fatal(err)
	}
	f.set([]byte(file("a", "c")))
	got, err := r.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Join(names(got), ","); n != "a,c" {
		t.Errorf("got providers %s, want a,c", n)
	}
}

// TestReaderFailureKeepsLast: a registry that cannot be read, or no longer loads,
// leaves the last one read in use and says so with ErrUnreadable; once readable
// again, the next call reads it.
func TestReaderFailureKeepsLast(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a", "b")))
	r := newReader(f)
	ctx := context.Background()
	good, err := r.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		breakIt func()
	}{
		{"S3 fails", func() { f.fail = errDown }},
		{"stored file broken by hand", func() { f.fail = nil; f.set([]byte("colour: blue\n" + file("a"))) }},
		{"stored file not YAML", func() { f.set([]byte("providers: [")) }},
	} {
		tc.breakIt()
		got, err := r.Current(ctx)
		if !errors.Is(err, ErrUnreadable) {
			t.Errorf("%s: got error %v, want ErrUnreadable", tc.name, err)
		}
		if got.Registry != good.Registry {
			t.Errorf("%s: got providers %v, want the last read %v", tc.name, names(got), names(good))
		}
	}
	f.set([]byte(file("c")))
	got, err := r.Current(ctx)
	if err != nil || strings.Join(names(got), ",") != "c" {
		t.Errorf("after repair: got %v, %v; want [c], no error", names(got), err)
	}
}

// TestReaderRejectsBrokenEntries: an entry broken by hand in the stored file fails
// only itself: the others are the registry, and the broken one is returned with its
// problems, so its provider is reported failed, not silently dropped.
func TestReaderRejectsBrokenEntries(t *testing.T) {
	f := &fakeS3{}
	f.set([]byte(file("a", "b", "c") + "    refresh_before: soon\n"))
	got, err := newReader(f).Current(context.Background())
	if err != nil {
		t.Fatalf("got %v, want the good entries read", err)
	}
	if strings.Join(names(got), ",") != "a,b" {
		t.Errorf("got providers %v, want [a b]", names(got))
	}
	if len(got.Rejected) != 1 || got.Rejected[0].Name != "c" || !strings.Contains(got.Rejected[0].Err.Error(), "refresh_before") {
		t.Errorf("got rejected %+v, want c with its refresh_before problem", got.Rejected)
	}
}

// TestReaderFailureBeforeFirstRead: with nothing read yet, a failure returns no
// registry and the error.
func TestReaderFailureBeforeFirstRead(t *testing.T) {
	r := newReader(&fakeS3{fail: errDown})
	got, err := r.Current(context.Background())
	if !errors.Is(err, ErrUnreadable) || !errors.Is(err, errDown) || got.Registry != nil {
		t.Errorf("got %v, %v; want no registry and ErrUnreadable wrapping the cause", names(got), err)
	}
}

// TestReaderNoProviders: no object, an empty object and an empty list all mean no
// providers, not an error; a file with an empty list and another problem is broken.
func TestReaderNoProviders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    *string
		wantErr bool
	}{
		{name: "no object"},
		{name: "empty object", data: new("")},
		{name: "empty list", data: new("providers: []\n")},
		{name: "comment only", data: new("# nothing yet\n")},
		{name: "empty list and unknown key", data: new("providers: []\ncolour: blue\n"), wantErr: true},
	} {
		f := &fakeS3{}
		if tc.data != nil {
			f.set([]byte(*tc.data))
		}
		got, err := newReader(f).Current(context.Background())
		if gotErr := err != nil; gotErr != tc.wantErr {
			t.Errorf("%s: got error %v, want error %t", tc.name, err, tc.wantErr)
		}
		if got.Registry != nil {
			t.Errorf("%s: got providers %v, want none", tc.name, names(got))
		}
	}
}
