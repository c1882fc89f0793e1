package main

import "testing"

// TestCrashFSFaults is the crash test with store faults injected into the
// binary (CISTERN_FAULTS, docs/testing.md): writes fail, land without an
// answer and are slow, at random by seed, while producers and consumers
// run and the server is killed; every acknowledgement must still hold.
// Faults hit writes to queue containers only: the check after each
// restart reads, and start-up, which writes to the control container,
// reopens the store with the same seed on each try, so that a fault there
// would repeat forever.
func TestCrashFSFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server")
	}
	t.Setenv("CISTERN_FAULTS", "seed=11 put@q-=unavailable:0.05 put@q-=lost:0.05 delete@q-=unavailable:0.05 delete@q-=lost:0.05 put@q-=delay:0.1:2ms")
	bin := buildBinary(t)
	crashCycles(t, bin, 2, 10, "-data", t.TempDir())
}
