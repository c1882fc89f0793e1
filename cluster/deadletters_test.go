package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
)

type fixedOwner struct {
	self  bool
	owner string
}

func (f *fixedOwner) Owner(string, string) (bool, string) { return f.self, f.owner }

func TestDeadLettersPostOnTheOwner(t *testing.T) {
	ctx := context.Background()
	eng, err := index.Open(ctx, index.Options{Store: memdriver.New(), Logger: zerolog.Nop(), NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	secret := []byte("cluster secret")
	ownerSide := NewDeadLetters(&fixedOwner{self: true}, eng, secret)
	srv := httptest.NewServer(ownerSide.Handler())
	defer srv.Close()

	sender := NewDeadLetters(&fixedOwner{owner: srv.URL}, nil, secret)
	ref := index.QueueRef{Project: "p", Name: "dlq"}
	msg := index.NewMessage{Body: json.RawMessage(`{"poison":true}`), TTL: 600}
	id1, err := sender.PostMoved(ctx, ref, "c", msg, "0123abcd/7")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := sender.PostMoved(ctx, ref, "c", msg, "0123abcd/7")
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Fatalf("a retried move posted twice: %s, %s", id1, id2)
	}
	msgs, err := eng.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true})
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != `{"poison":true}` {
		t.Fatalf("dead-letter queue on the owner holds %v (%v)", msgs, err)
	}

	// A stranger without the secret cannot post.
	stranger := NewDeadLetters(&fixedOwner{owner: srv.URL}, nil, []byte("guess"))
	if _, err := stranger.PostMoved(ctx, ref, "c", msg, "0123abcd/8"); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("unsigned move: %v", err)
	}
	resp, err := http.Post(srv.URL+DeadLetterPath, "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned request: %d", resp.StatusCode)
	}
	if msgs, _ := eng.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true}); len(msgs) != 1 {
		t.Fatalf("after refused posts the queue holds %d", len(msgs))
	}

	// Nobody owns the queue yet: retry later.
	lost := NewDeadLetters(&fixedOwner{}, nil, secret)
	if _, err := lost.PostMoved(ctx, ref, "c", msg, "0123abcd/9"); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("no owner: %v", err)
	}
}
