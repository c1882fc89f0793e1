package storemetrics

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/memdriver"
)

func TestConformance(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	drivertest.Run(t, m.Wrap("mem", memdriver.New()))
}

func TestCounts(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	s := m.Wrap("p1", memdriver.New())
	ctx := context.Background()
	if err := s.CreateContainer(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Put(ctx, "c", "k", []byte("abc"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "c", "missing", nil); err == nil {
		t.Fatal("want not found")
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("p1", "put")); got != 3 {
		t.Errorf("puts counted %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.bytes.WithLabelValues("p1", "put")); got != 9 {
		t.Errorf("bytes put %v, want 9", got)
	}
	if got := testutil.CollectAndCount(m.failures); got != 0 {
		t.Errorf("a not-found get counted as %d failures", got)
	}
}
