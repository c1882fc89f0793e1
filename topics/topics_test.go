package topics

import (
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/index"
)

func TestRefRoundTrip(t *testing.T) {
	ref := Ref("p", "news")
	if n, ok := Name(ref.Name); !ok || n != "news" || Display(ref) != "news" || !Is(ref.Name) {
		t.Fatalf("ref %+v: Name %q %v, Display %q", ref, n, ok, Display(ref))
	}
	q := index.QueueRef{Project: "p", Name: "news"}
	if Is(q.Name) || Display(q) != "news" {
		t.Fatalf("queue %+v taken for a topic", q)
	}
	// Keys of package notify refuse a '/' in a name.
	if strings.Contains(Prefix, "/") {
		t.Fatalf("prefix %q holds '/'", Prefix)
	}
	if got, want := Marker(""), Prefix; got != want || !(Marker("a") > Marker("")) {
		t.Fatalf("Marker(%q) = %q", "", got)
	}
}
