package faultstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/memdriver"
)

var ctx = context.Background()

// TestConformance: with no rule active the decorator is the store.
func TestConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) { drivertest.Run(t, New(memdriver.New(), Options{Seed: 1})) })
	t.Run("fs", func(t *testing.T) {
		s, err := fsdriver.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		drivertest.Run(t, New(s, Options{Seed: 1}))
	})
}

// fakeSleep records the waits asked for and returns at once, or the
// context's error when it has ended.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	return ctx.Err()
}

func newStore(t *testing.T) (*Store, *memdriver.Store, *fakeSleep) {
	t.Helper()
	mem := memdriver.New()
	if err := mem.CreateContainer(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := mem.Put(ctx, "c", "k", []byte("0123456789"), nil); err != nil {
		t.Fatal(err)
	}
	fs := &fakeSleep{}
	return New(mem, Options{Seed: 7, Sleep: fs.sleep}), mem, fs
}

func TestFailKinds(t *testing.T) {
	for _, kind := range []error{drivers.ErrUnavailable, drivers.ErrInvalid, drivers.ErrPreconditionFailed, drivers.ErrNotFound, drivers.ErrNotSupported} {
		t.Run(kind.Error(), func(t *testing.T) {
			s, mem, _ := newStore(t)
			s.Add(Rule{Verbs: []Verb{Put}, Err: kind})
			err := s.Put(ctx, "c", "new", []byte("x"), nil)
			if drivers.KindOf(err) != kind {
				t.Fatalf("Put = %v, want kind %v", err, kind)
			}
			if _, err := mem.Get(ctx, "c", "new", nil); !errors.Is(err, drivers.ErrNotFound) {
				t.Fatalf("a failed put reached the store: %v", err)
			}
			if _, err := s.Get(ctx, "c", "k", nil); err != nil {
				t.Fatalf("a rule for puts failed a get: %v", err)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	s, mem, _ := newStore(t)
	if err := mem.CreateContainer(ctx, "q-1"); err != nil {
		t.Fatal(err)
	}
	s.Add(Rule{ContainerPrefix: "q-", KeyPrefix: "log/"})
	if err := s.Put(ctx, "q-1", "log/1", []byte("x"), nil); !errors.Is(err, drivers.ErrUnavailable) {
		t.Errorf("matching put: %v", err)
	}
	if err := s.Put(ctx, "q-1", "snap/1", []byte("x"), nil); err != nil {
		t.Errorf("other key prefix: %v", err)
	}
	if err := s.Put(ctx, "c", "log/1", []byte("x"), nil); err != nil {
		t.Errorf("other container: %v", err)
	}
	if _, err := s.List(ctx, "q-1", &drivers.ListOptions{Prefix: "log/"}); !errors.Is(err, drivers.ErrUnavailable) {
		t.Errorf("list of the prefix: %v", err)
	}
	if _, err := s.List(ctx, "q-1", nil); err != nil {
		t.Errorf("list of everything: %v", err)
	}
	s.Remove("")
	if err := s.Put(ctx, "q-1", "log/1", []byte("x"), nil); err != nil {
		t.Errorf("after Remove: %v", err)
	}
}

func TestCount(t *testing.T) {
	s, _, _ := newStore(t)
	s.Add(Rule{Verbs: []Verb{Get}, Count: 2})
	var fails int
	for range 5 {
		if _, err := s.Get(ctx, "c", "k", nil); err != nil {
			fails++
		}
	}
	if fails != 2 {
		t.Fatalf("%d gets failed, want the next 2", fails)
	}
}

// TestSeed: a probability rule hits the same requests for the same seed,
// and about as often as asked.
func TestSeed(t *testing.T) {
	run := func(seed uint64) []bool {
		s := New(memdriver.New(), Options{Seed: seed})
		s.Add(Rule{Verbs: []Verb{ListContainers}, Prob: 0.3})
		out := make([]bool, 2000)
		for i := range out {
			_, err := s.ListContainers(ctx, nil)
			out[i] = err != nil
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	hits := 0
	for _, h := range a {
		if h {
			hits++
		}
	}
	if !slices.Equal(a, b) {
		t.Error("same seed, different faults")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same faults")
	}
	if hits < 500 || hits > 700 {
		t.Errorf("%d of 2000 hit at probability 0.3", hits)
	}
}

func TestLostAnswer(t *testing.T) {
	s, mem, _ := newStore(t)
	s.Add(Rule{Effect: LostAnswer, Verbs: []Verb{Put, Delete}})
	if err := s.Put(ctx, "c", "landed", []byte("x"), nil); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("Put = %v, want unavailable", err)
	}
	if b, err := mem.Get(ctx, "c", "landed", nil); err != nil || string(b) != "x" {
		t.Fatalf("the put did not land: %q, %v", b, err)
	}
	if err := s.Delete(ctx, "c", "landed"); err == nil {
		t.Fatal("Delete answered")
	}
	if _, err := mem.Get(ctx, "c", "landed", nil); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("the delete did not land: %v", err)
	}
	// An answer the store gave anyway (here, create-only refused) is not
	// replaced: the request did not land.
	if err := s.Put(ctx, "c", "k", []byte("y"), &drivers.PutOptions{CreateOnly: true}); !errors.Is(err, drivers.ErrPreconditionFailed) {
		t.Fatalf("refused create-only put = %v", err)
	}
}

func TestDelayAndTimeout(t *testing.T) {
	s, mem, fs := newStore(t)
	s.Add(Rule{Name: "slow", Effect: Delay, Latency: 3 * time.Second, Verbs: []Verb{Get}})
	if b, err := s.Get(ctx, "c", "k", nil); err != nil || string(b) != "0123456789" {
		t.Fatalf("delayed Get = %q, %v", b, err)
	}
	s.Remove("slow")
	s.Add(Rule{Effect: Timeout, Latency: 30 * time.Second, Verbs: []Verb{Put}})
	err := s.Put(ctx, "c", "t", []byte("x"), nil)
	if !errors.Is(err, drivers.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out Put = %v", err)
	}
	if _, err := mem.Get(ctx, "c", "t", nil); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("a timed-out put reached the store: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, "c", "t", []byte("x"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with an ended context = %v, want its error", err)
	}
	if want := []time.Duration{3 * time.Second, 30 * time.Second, 30 * time.Second}; !slices.Equal(fs.waits, want) {
		t.Fatalf("waits %v, want %v", fs.waits, want)
	}
}

// TestRealSleep: the default sleep returns at the context's end.
func TestRealSleep(t *testing.T) {
	s := New(memdriver.New(), Options{})
	s.Add(Rule{Effect: Timeout, Latency: time.Hour})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := s.CreateContainer(cctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CreateContainer = %v", err)
	}
}

func TestTornAndFlip(t *testing.T) {
	s, mem, _ := newStore(t)
	whole := []byte("0123456789")
	s.Add(Rule{Name: "torn", Effect: Torn, Count: 50})
	for range 50 {
		b, err := s.Get(ctx, "c", "k", nil)
		if err != nil || len(b) >= len(whole) || !bytes.HasPrefix(whole, b) {
			t.Fatalf("torn Get = %q, %v; want a strict prefix", b, err)
		}
	}
	// Torn applies to gets only.
	s.Add(Rule{Effect: Torn})
	if err := s.Put(ctx, "c", "p", []byte("x"), nil); err != nil {
		t.Fatalf("Put under a torn rule: %v", err)
	}
	s.Clear()
	s.Add(Rule{Effect: Flip, Count: 50})
	for range 50 {
		b, err := s.Get(ctx, "c", "k", &drivers.GetOptions{Range: &drivers.Range{Offset: 2, Length: 5}})
		if err != nil || len(b) != 5 {
			t.Fatalf("flipped Get = %q, %v", b, err)
		}
		diff := 0
		for i := range b {
			if b[i] != whole[2+i] {
				diff++
			}
		}
		if diff != 1 {
			t.Fatalf("flipped Get = %q: %d bytes differ, want 1", b, diff)
		}
	}
	if b, _ := mem.Get(ctx, "c", "k", nil); !bytes.Equal(b, whole) {
		t.Fatalf("the stored object changed: %q", b)
	}
	if got := s.Injected(); got[Torn] != 50 || got[Flip] != 50 {
		t.Fatalf("Injected = %v", got)
	}
}

func TestDownAndFull(t *testing.T) {
	s, _, _ := newStore(t)
	s.SetFull(true)
	err := s.Put(ctx, "c", "k2", []byte("x"), nil)
	if !errors.Is(err, drivers.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put on a full store = %v", err)
	}
	if err := s.CreateContainer(ctx, "d"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("CreateContainer on a full store = %v", err)
	}
	if _, err := s.Get(ctx, "c", "k", nil); err != nil {
		t.Fatalf("Get on a full store: %v", err)
	}
	if err := s.Delete(ctx, "c", "k"); err != nil {
		t.Fatalf("Delete on a full store: %v", err)
	}
	s.SetDown(true)
	if _, err := s.List(ctx, "c", nil); !errors.Is(err, drivers.ErrUnavailable) || !errors.Is(err, ErrDown) {
		t.Fatalf("List while down = %v", err)
	}
	s.Clear()
	if err := s.Put(ctx, "c", "k2", []byte("x"), nil); err != nil {
		t.Fatalf("Put after Clear: %v", err)
	}
}

func TestGetFilter(t *testing.T) {
	s, _, _ := newStore(t)
	rng := &drivers.GetOptions{Range: &drivers.Range{Offset: 1, Length: 2}}
	s.Add(Rule{Name: "whole", Gets: GetsWhole})
	if _, err := s.Get(ctx, "c", "k", nil); err == nil {
		t.Error("whole get passed a whole-only rule")
	}
	if _, err := s.Get(ctx, "c", "k", rng); err != nil {
		t.Errorf("ranged get hit a whole-only rule: %v", err)
	}
	s.Remove("whole")
	s.Add(Rule{Gets: GetsRanged})
	if _, err := s.Get(ctx, "c", "k", nil); err != nil {
		t.Errorf("whole get hit a ranged-only rule: %v", err)
	}
	if _, err := s.Get(ctx, "c", "k", rng); err == nil {
		t.Error("ranged get passed a ranged-only rule")
	}
}
