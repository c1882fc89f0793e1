// Command storebench measures the raw object store a Cistern pool sits on:
// how many PUTs of one small object per second it takes at each concurrency,
// and how long one PUT takes (p50/p90/p99), through the same driver code
// Cistern uses. scripts/bench-compare.sh runs it to put Cistern's numbers
// next to the store's own ("one store PUT", "the raw Swift PUT rate").
//
//	go run ./scripts/storebench -driver swift -c 1,16 -duration 10s -json
//
// Credentials come from the same environment scripts/swift-aio.sh prints
// (CISTERN_SWIFT_AUTH_URL/_USER/_KEY, CISTERN_S3_ENDPOINT/_ACCESS_KEY/
// _SECRET_KEY/_REGION). Every object it writes goes into a fresh container
// and is deleted again at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/s3driver"
	"github.com/cistern-mq/cistern/drivers/swiftdriver"
)

// Result is one concurrency level.
type Result struct {
	Concurrency int     `json:"concurrency"`
	Puts        int64   `json:"puts"`
	Errors      int64   `json:"errors"`
	Seconds     float64 `json:"seconds"`
	PutsPerSec  float64 `json:"puts_per_sec"`
	MeanMs      float64 `json:"mean_ms"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

// Report is the whole run.
type Report struct {
	Driver   string   `json:"driver"`
	Size     int      `json:"size"`
	Results  []Result `json:"results"`
	BestRate float64  `json:"best_puts_per_sec"`
	// SinglePutP50Ms is the p50 latency at concurrency 1 (0 when not run).
	SinglePutP50Ms float64 `json:"single_put_p50_ms"`
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	var (
		driver   = flag.String("driver", "fs", "store to measure: fs, swift or s3")
		dir      = flag.String("dir", "", "fs: data directory (default: a fresh temporary one, removed after)")
		swiftURL = flag.String("swift-auth-url", env("CISTERN_SWIFT_AUTH_URL", ""), "swift: auth URL")
		swiftUsr = flag.String("swift-user", env("CISTERN_SWIFT_USER", ""), "swift: user")
		swiftKey = flag.String("swift-key", env("CISTERN_SWIFT_KEY", ""), "swift: key")
		s3End    = flag.String("s3-endpoint", env("CISTERN_S3_ENDPOINT", ""), "s3: endpoint")
		s3Bucket = flag.String("s3-bucket", "cistern-storebench", "s3: bucket (created if missing)")
		s3Region = flag.String("s3-region", env("CISTERN_S3_REGION", ""), "s3: region")
		s3Access = flag.String("s3-access-key", env("CISTERN_S3_ACCESS_KEY", ""), "s3: access key")
		s3Secret = flag.String("s3-secret-key", env("CISTERN_S3_SECRET_KEY", ""), "s3: secret key")
		size     = flag.Int("size", 1024, "object size in bytes")
		concs    = flag.String("c", "1,16", "comma-separated concurrency levels")
		duration = flag.Duration("duration", 10*time.Second, "measuring time per concurrency level")
		warmup   = flag.Duration("warmup", time.Second, "unmeasured PUTs before each level")
		asJSON   = flag.Bool("json", false, "print one JSON report instead of text")
	)
	flag.Parse()
	var levels []int
	for _, f := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("-c %q: want positive integers", *concs)
		}
		levels = append(levels, n)
	}

	ctx := context.Background()
	var store drivers.Store
	var err error
	switch *driver {
	case "fs":
		d := *dir
		if d == "" {
			if d, err = os.MkdirTemp("", "storebench-"); err != nil {
				fatalf("%v", err)
			}
			defer os.RemoveAll(d)
		}
		store, err = fsdriver.New(d)
	case "swift":
		store, err = swiftdriver.New(ctx, swiftdriver.Config{AuthURL: *swiftURL, User: *swiftUsr, Key: *swiftKey})
	case "s3":
		store, err = s3driver.New(ctx, s3driver.Config{Endpoint: *s3End, Bucket: *s3Bucket, Region: *s3Region,
			AccessKey: *s3Access, SecretKey: *s3Secret, PathStyle: true, CreateBucket: true})
	default:
		fatalf("-driver %q: want fs, swift or s3", *driver)
	}
	if err != nil {
		fatalf("open %s: %v", *driver, err)
	}
	defer store.Close()

	payload := make([]byte, *size)
	rep := Report{Driver: *driver, Size: *size}
	for _, c := range levels {
		r, err := measure(ctx, store, payload, c, *warmup, *duration)
		if err != nil {
			fatalf("%s at c=%d: %v", *driver, c, err)
		}
		rep.Results = append(rep.Results, r)
		rep.BestRate = math.Max(rep.BestRate, r.PutsPerSec)
		if c == 1 {
			rep.SinglePutP50Ms = r.P50Ms
		}
		if !*asJSON {
			fmt.Printf("%s PUT %dB c=%-3d %8.1f puts/s  mean %.2f ms  p50 %.2f  p90 %.2f  p99 %.2f ms  (%d puts, %d errors)\n",
				*driver, *size, c, r.PutsPerSec, r.MeanMs, r.P50Ms, r.P90Ms, r.P99Ms, r.Puts, r.Errors)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	}
}

// measure runs conc writers of fresh keys into a new container for d (after
// warmup), then deletes everything it wrote.
func measure(ctx context.Context, s drivers.Store, payload []byte, conc int, warmup, d time.Duration) (Result, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	container := "storebench-" + hex.EncodeToString(b[:])
	if err := s.CreateContainer(ctx, container); err != nil {
		return Result{}, err
	}
	defer cleanup(s, container)

	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	var lat []time.Duration
	var measured atomic.Bool
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var mine []time.Duration
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				i := next.Add(1)
				err := s.Put(ctx, container, fmt.Sprintf("o/%012d", i), payload, nil)
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				measured.Store(true)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mine = append(mine, t1.Sub(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(measureFrom).Seconds()
	slices.Sort(lat)
	r := Result{Concurrency: conc, Puts: int64(len(lat)), Errors: errs.Load(), Seconds: elapsed}
	if fe, ok := firstErr.Load().(string); ok {
		r.FirstError = fe
	}
	if len(lat) == 0 {
		return r, fmt.Errorf("no successful PUT (%d errors; first: %s)", r.Errors, r.FirstError)
	}
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	ms := func(x time.Duration) float64 { return math.Round(float64(x.Microseconds())/10) / 100 }
	pct := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	r.PutsPerSec = math.Round(float64(len(lat))/elapsed*10) / 10
	r.MeanMs = ms(sum / time.Duration(len(lat)))
	r.P50Ms, r.P90Ms, r.P99Ms = pct(0.50), pct(0.90), pct(0.99)
	return r, nil
}

// cleanup deletes every object in container and then the container.
func cleanup(s drivers.Store, container string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for range 1000 { // bounded: a lagging listing may repeat keys
		p, err := s.List(ctx, container, &drivers.ListOptions{Limit: 1000})
		if err != nil || len(p.Objects) == 0 {
			break
		}
		keys := make([]string, len(p.Objects))
		for i, o := range p.Objects {
			keys[i] = o.Key
		}
		if err := drivers.DeleteMany(ctx, s, container, keys); err != nil {
			fmt.Fprintf(os.Stderr, "storebench: cleanup of %s: %v\n", container, err)
			return
		}
	}
	if err := s.DeleteContainer(ctx, container); err != nil {
		fmt.Fprintf(os.Stderr, "storebench: delete container %s: %v\n", container, err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "storebench: "+format+"\n", args...)
	os.Exit(1)
}
