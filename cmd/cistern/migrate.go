package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/cistern-mq/cistern/placement"
)

// migrateCommand is `cistern migrate`: it asks a running server's admin API
// to move queues to the pools the ring now picks (or one queue to a named
// pool) and draws the job's progress until it ends. The server does the
// moving, since it owns the queues; a migration it was running when it
// stopped resumes when it starts again.
func migrateCommand(args []string, getenv func(string) string, out io.Writer) int {
	fs := flag.NewFlagSet("cistern migrate", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, `Usage: cistern migrate [flags]

Moves queues between pools through a running server's admin API
(-admin-listen): with no -queue, every queue the ring now places on another
pool (after adding a pool, changing weights or flavors); with -queue, that
one queue, to -pool or to where the ring puts it. Queues stay readable and
writable while they move. docs/pools.md explains it.

Flags:
`)
		fs.PrintDefaults()
	}
	admin := fs.String("admin", firstNonEmpty(getenv("CISTERN_ADMIN_URL"), "http://127.0.0.1:8889"), "URL of the server's admin API (env CISTERN_ADMIN_URL)")
	project := fs.String("project", "", "project of the queue to move (its X-Project-ID); required with -queue")
	queue := fs.String("queue", "", "the queue to move (default: every misplaced queue)")
	pool := fs.String("pool", "", "pool to move the queue to (default: the ring's choice)")
	every := fs.Duration("every", 500*time.Millisecond, "how often to poll the progress")
	dryRun := fs.Bool("dry-run", false, "list the queues a migration of every misplaced queue would move, and where, and move nothing")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dryRun {
		if *queue != "" || *pool != "" {
			fmt.Fprintln(out, "cistern migrate: -dry-run shows the moves of every misplaced queue; it takes no -queue or -pool")
			return 2
		}
		c := &adminClient{base: strings.TrimSuffix(*admin, "/"), http: &http.Client{Timeout: 5 * time.Minute}}
		return printPlan(c, out)
	}
	switch {
	case *queue != "" && *project == "":
		// Queues live in projects; without one the server looks for a
		// queue of no project, which cannot exist.
		fmt.Fprintf(out, "cistern migrate: -queue %s needs -project: the project the queue belongs to (the X-Project-ID its clients send)\n", *queue)
		return 2
	case *queue == "" && (*project != "" || *pool != ""):
		fmt.Fprintln(out, "cistern migrate: -project and -pool go with -queue; without -queue every misplaced queue moves")
		return 2
	}
	body := map[string]string{}
	if *queue != "" {
		body = map[string]string{"project": *project, "queue": *queue, "pool": *pool}
	}
	c := &adminClient{base: strings.TrimSuffix(*admin, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	if _, err := c.do("POST", "/v2/migrations", body); err != nil {
		fmt.Fprintln(out, "cistern migrate:", err)
		return 1
	}
	for {
		data, err := c.do("GET", "/v2/migrations", nil)
		if err != nil {
			fmt.Fprintln(out, "\ncistern migrate:", err)
			return 1
		}
		var st placement.MigrationStatus
		if err := json.Unmarshal(data, &st); err != nil {
			fmt.Fprintln(out, "\ncistern migrate: status:", err)
			return 1
		}
		fmt.Fprintf(out, "\r%s", progressBar(st, 40))
		if !st.Running {
			fmt.Fprintln(out)
			for _, e := range st.Errors {
				fmt.Fprintln(out, "  failed:", e)
			}
			if st.Failed > 0 || len(st.Errors) > 0 {
				return 1
			}
			return 0
		}
		time.Sleep(*every) // the pace of a progress display
	}
}

// printPlan prints what a migration would move, one queue a line.
func printPlan(c *adminClient, out io.Writer) int {
	data, err := c.do("GET", "/v2/migrations/plan", nil)
	if err != nil {
		fmt.Fprintln(out, "cistern migrate:", err)
		return 1
	}
	var plan struct {
		Total     int              `json:"total"`
		Truncated bool             `json:"truncated"`
		Moves     []placement.Move `json:"moves"`
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		fmt.Fprintln(out, "cistern migrate: plan:", err)
		return 1
	}
	for _, m := range plan.Moves {
		fmt.Fprintf(out, "%s/%s: %s -> %s\n", m.Project, m.Queue, m.From, m.To)
	}
	if plan.Truncated {
		fmt.Fprintf(out, "(the first %d of %d)\n", len(plan.Moves), plan.Total)
	}
	fmt.Fprintf(out, "%d queues would move (dry run: nothing moved)\n", plan.Total)
	return 0
}

// progressBar renders a one-line bar: [#####xx...] 12/40 moved, 2 failed;
// '#' for queues moved, 'x' for queues that failed, so that a run that
// failed never shows a full bar of '#'.
func progressBar(st placement.MigrationStatus, width int) string {
	moved, failed := 0, 0
	if st.Total > 0 {
		moved = width * min(st.Done, st.Total) / st.Total
		failed = width*min(st.Done+st.Failed, st.Total)/st.Total - moved
		if st.Failed > 0 && failed == 0 && moved+failed < width {
			failed = 1 // one failure in many still shows
		}
	}
	bar := strings.Repeat("#", moved) + strings.Repeat("x", failed) + strings.Repeat(".", width-moved-failed)
	line := fmt.Sprintf("[%s] %d/%d moved, %d failed", bar, st.Done, st.Total, st.Failed)
	if st.Current != "" {
		line += "  " + st.Current
	}
	return line + "\033[K"
}

type adminClient struct {
	base string
	http *http.Client
}

func (c *adminClient) do(method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Client-ID", newUUID())
	req.Header.Set("X-Project-ID", "admin")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%w (is -admin-listen set on the server, and -admin or CISTERN_ADMIN_URL its address?)", err)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	return data, nil
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
