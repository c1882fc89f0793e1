package index_test

import "testing"

// TestFaultRandomAll runs producers and consumers through every fault the
// injector has, writes the engine does not retry included.
func TestFaultRandomAll(t *testing.T) { runRandom(t, allFaults) }
