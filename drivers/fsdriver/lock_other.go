//go:build !unix

package fsdriver

import "os"

// lockFile does nothing where flock(2) does not exist: there, nothing
// stops two processes from sharing a data folder (docs/storage.md).
func lockFile(f *os.File, shared bool) error { return nil }
