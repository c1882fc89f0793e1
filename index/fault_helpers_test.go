package index_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

// Helpers of the fault-injection suite (docs/testing.md).

// openFault opens an engine over s with a clock moved by hand and small
// snapshot intervals, so that snapshots and garbage collection run (and
// meet faults) within a short test.
func openFault(t *testing.T, s drivers.Store) *index.Engine {
	t.Helper()
	return openFaultClock(t, s, enginetest.NewClock())
}

func openFaultClock(t *testing.T, s drivers.Store, clk *enginetest.Clock) *index.Engine {
	t.Helper()
	return openFaultWith(t, index.Options{Store: s, Clock: clk})
}

// openFaultWith opens an engine with o, a snapshot every 4 logs.
func openFaultWith(t *testing.T, o index.Options) *index.Engine {
	t.Helper()
	o.Logger, o.NoJanitor, o.SnapshotLogs = zerolog.Nop(), true, 4
	if os.Getenv("CISTERN_TEST_LOG") != "" {
		o.Logger = zerolog.New(os.Stderr).Level(zerolog.DebugLevel)
	}
	if o.Clock == nil {
		o.Clock = enginetest.NewClock()
	}
	e, err := index.Open(ctx, o)
	if err != nil {
		t.Fatalf("index.Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func postOne(t *testing.T, e *index.Engine, ref index.QueueRef, body string) string {
	t.Helper()
	ids, err := e.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(body), TTL: 3600}})
	if err != nil {
		t.Fatalf("Post(%s): %v", body, err)
	}
	return ids[0]
}

func bodiesOf(ms []index.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Body)
	}
	return out
}
