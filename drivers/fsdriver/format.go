package fsdriver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// The data folder of format 2:
//
//	cistern-format   "cistern fs format 2", written last when a folder is made or converted
//	cistern.lock     flock(2)ed by the one process that has the folder open
//	containers@2/    one directory per container (containerName), keys as keyPath
//	tmp@2/           temporary files of puts under way; emptied at every open
//	                 (shared opens: only of files older than staleTemp)
//
// Format 1 (before the format file existed) kept each container directly in
// the data folder, named as given, and each key as one flat file name with
// '/' escaped. A folder without the format file is converted in place at
// open (convertV1). The '@' in the new names is not allowed in a container
// name, so a format-1 container can never be mistaken for them.
const (
	formatName    = "cistern-format"
	formatText    = "cistern fs format 2\n"
	lockName      = "cistern.lock"
	containersDir = "containers@2"
	tmpDir        = "tmp@2"
	convertDir    = ".cistern-convert" // the conversion's work area

	// controlContainer is the container every Cistern engine makes
	// (index's catalog); a format-1 folder without it is not Cistern's.
	controlContainer = "cistern-control"
)

// errLocked is what lockFile returns when another open holds the lock.
var errLocked = errors.New("locked by another process")

// prepare brings the data folder root (locked by the caller) to format 2,
// and empties the temporary directory, where only an interrupted put can
// have left files: nobody else writes in a folder locked exclusively. A
// shared open (cluster nodes) removes only the stale ones.
func prepare(root string, shared bool) error {
	data, err := os.ReadFile(filepath.Join(root, formatName))
	switch {
	case err == nil && string(data) == formatText:
	case err == nil:
		return drivers.Errorf(drivers.ErrInvalid, "fs: data directory %s is of format %q, which this version of cistern does not read", root, strings.TrimSpace(string(data)))
	case errors.Is(err, fs.ErrNotExist):
		if err := upgrade(root); err != nil {
			return err
		}
	default:
		return mapErr(err, "fs: read %s", formatName)
	}
	if err := os.MkdirAll(filepath.Join(root, containersDir), 0o755); err != nil {
		return mapErr(err, "fs: create %s", containersDir)
	}
	tmp := filepath.Join(root, tmpDir)
	if shared {
		return removeStaleTemps(tmp, time.Now().Add(-staleTemp))
	}
	if err := os.RemoveAll(tmp); err != nil {
		return mapErr(err, "fs: remove temporary files in %s", tmp)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return mapErr(err, "fs: create %s", tmp)
	}
	return nil
}

// staleTemp is the age past which a shared open takes a temporary file for
// the leftover of a crashed put: a put holds its file for one store write,
// seconds at most, never this long.
const staleTemp = time.Hour

// removeStaleTemps makes the temporary directory tmp if needed and removes
// its files modified before cutoff. A shared open cannot empty it: the
// other nodes' puts under way have their files there, and removing one
// fails that put as if its container were gone.
func removeStaleTemps(tmp string, cutoff time.Time) error {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return mapErr(err, "fs: create %s", tmp)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return mapErr(err, "fs: read %s", tmp)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue // gone meanwhile (linked by its put), or recent
		}
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return mapErr(err, "fs: remove stale temporary file %s", e.Name())
		}
	}
	return nil
}

// upgrade makes a folder without a format file one of format 2: a new or
// empty folder at once, a format-1 folder by conversion. Every step can be
// interrupted by a crash and is finished at the next open: the format-1
// directories stay whole until containers@2 appears, complete, by one
// rename; they are removed after it; the format file comes last.
func upgrade(root string) error {
	old, err := v1Containers(root)
	if err != nil {
		return mapErr(err, "fs: read %s", root)
	}
	if _, err := os.Stat(filepath.Join(root, containersDir)); errors.Is(err, fs.ErrNotExist) {
		// Cistern always makes its control container: a folder of other
		// directories is not ours to convert (and then remove).
		if len(old) > 0 && !slices.Contains(old, controlContainer) {
			return drivers.Errorf(drivers.ErrInvalid,
				"fs: data directory %s holds directories but no cistern data (neither %s nor %s): give cistern a new or empty directory",
				root, formatName, controlContainer)
		}
		if err := os.RemoveAll(filepath.Join(root, convertDir)); err != nil {
			return mapErr(err, "fs: remove an interrupted conversion")
		}
		if err := convertV1(root, old); err != nil {
			return drivers.Wrap(drivers.ErrUnavailable, err,
				"fs: converting data directory %s to %s failed (it is unchanged; the conversion starts again at the next start, or restore it from a backup)",
				root, strings.TrimSpace(formatText))
		}
	} else if err != nil {
		return mapErr(err, "fs: stat %s", containersDir)
	}
	for _, name := range old {
		// Only what was converted: a directory made since is not removed.
		if _, err := os.Stat(filepath.Join(root, containersDir, containerName(name))); err != nil {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
			return mapErr(err, "fs: remove converted directory %s", name)
		}
	}
	if err := syncDir(root); err != nil {
		return mapErr(err, "fs: sync %s", root)
	}
	return writeFormat(root)
}

// v1Containers lists the format-1 containers in root: the directories
// with container names.
func v1Containers(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && drivers.ValidContainer(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// convertV1 builds the format-2 tree of the format-1 containers old in
// convertDir out of hard links to their files (no data is copied, nothing
// old is changed), syncs it, and renames it into place.
func convertV1(root string, old []string) error {
	stage := filepath.Join(root, convertDir)
	if err := os.Mkdir(stage, 0o755); err != nil {
		return err
	}
	for _, name := range old {
		src := filepath.Join(root, name)
		dst := filepath.Join(stage, containerName(name))
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == src {
				return err
			}
			if d.IsDir() {
				if strings.HasPrefix(d.Name(), ".") || !strings.HasSuffix(d.Name(), "+") {
					return fs.SkipDir // what format 1 did not list is not data
				}
				return nil
			}
			rel, _ := filepath.Rel(src, p)
			key, ok := decodeKeyV1(rel)
			if !ok || strings.HasPrefix(d.Name(), ".") {
				return nil // a temporary or stray file
			}
			to := filepath.Join(dst, keyPath(key))
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			return os.Link(p, to)
		})
		if err != nil {
			return fmt.Errorf("container %s: %w", name, err)
		}
	}
	// Each new directory entry must be durable before the tree is put in
	// place; children first, so that every directory is synced after its
	// last entry was made.
	var dirs []string
	err := filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(dirs[i]); err != nil {
			return err
		}
	}
	if err := os.Rename(stage, filepath.Join(root, containersDir)); err != nil {
		return err
	}
	return syncDir(root)
}

// writeFormat writes the format file durably.
func writeFormat(root string) error {
	tmp := filepath.Join(root, "."+formatName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return mapErr(err, "fs: write %s", formatName)
	}
	_, err = f.WriteString(formatText)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(root, formatName))
	}
	if err == nil {
		err = syncDir(root)
	}
	if err != nil {
		return mapErr(err, "fs: write %s", formatName)
	}
	return nil
}

// decodeKeyV1 reads a key path of format 1: every byte outside
// [A-Za-z0-9_-] escaped as %XX, names over 200 bytes cut into directories
// marked with a trailing '+'.
func decodeKeyV1(rel string) (key string, ok bool) {
	segs := strings.Split(filepath.ToSlash(rel), "/")
	var b strings.Builder
	for i, s := range segs {
		if i < len(segs)-1 {
			if !strings.HasSuffix(s, "+") {
				return "", false
			}
			s = s[:len(s)-1]
		}
		if s == "" {
			return "", false
		}
		for j := 0; j < len(s); j++ {
			c := s[j]
			switch {
			case plain(c) || c >= 'A' && c <= 'Z':
				b.WriteByte(c)
			case c == '%' && j+2 < len(s):
				hi, lo := unhex(s[j+1]), unhex(s[j+2])
				if hi < 0 || lo < 0 {
					return "", false
				}
				b.WriteByte(byte(hi<<4 | lo))
				j += 2
			default:
				return "", false
			}
		}
	}
	return b.String(), true
}
