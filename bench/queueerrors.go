package bench

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// queueErrors is the outcome of creating or deleting many queues when
// some failed: a count by error class (as in the per-operation table)
// and the first error, so that a run over 1,000 queues says what went
// wrong in one line instead of 1,000.
type queueErrors struct {
	failed, total int
	byClass       map[string]int64
	first         error
}

// newQueueErrors summarises errs, one per queue (nil when that queue
// succeeded); it returns nil when none failed.
func newQueueErrors(errs []error) *queueErrors {
	qe := &queueErrors{total: len(errs), byClass: make(map[string]int64)}
	for _, err := range errs {
		if err == nil {
			continue
		}
		qe.failed++
		qe.byClass[errorClass(err)]++
		if qe.first == nil {
			qe.first = err
		}
	}
	if qe.failed == 0 {
		return nil
	}
	return qe
}

// Error is one line: "3 of 1000 queues: 503×2, timeout×1 (first: ...)".
func (qe *queueErrors) Error() string {
	first := strings.Join(strings.Fields(qe.first.Error()), " ")
	return fmt.Sprintf("%d of %d queues: %s (first: %s)", qe.failed, qe.total, classCounts(qe.byClass), first)
}

func (qe *queueErrors) Unwrap() error { return qe.first }

// classCounts formats errors by class as "503×2, timeout×1", the most
// frequent first.
func classCounts(m map[string]int64) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
