package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// dur returns a random duration in [0, n).
func dur(rng *rand.Rand, n time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(n))) }

// exactQuantile is the ceil(q*n)-th smallest of sorted values.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 1us-10ms", func() time.Duration { return time.Microsecond + dur(rng, 10*time.Millisecond) }},
		{"exponential mean 2ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond)) }},
		{"tiny exact values", func() time.Duration { return dur(rng, time.Duration(200)) }},
		{"long tail to 30s", func() time.Duration {
			if rng.IntN(100) == 0 {
				return dur(rng, 30*time.Second)
			}
			return dur(rng, time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			vals := make([]time.Duration, 20000)
			var sum time.Duration
			for i := range vals {
				vals[i] = tt.gen()
				sum += vals[i]
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				want, got := exactQuantile(vals, q), h.Quantile(q)
				// The bucket's upper bound: never below the exact
				// value, and above it by less than 1/128 of it.
				if got < want || float64(got-want) > float64(want)/subCount {
					t.Errorf("q%.3f = %v, exact %v", q, got, want)
				}
			}
			if h.Max() != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
				t.Errorf("max %v count %d, want %v %d", h.Max(), h.Count(), vals[len(vals)-1], len(vals))
			}
			if want := sum / time.Duration(len(vals)); h.Mean() != want {
				t.Errorf("mean %v, want %v", h.Mean(), want)
			}
		})
	}
}

func TestHistogramSmall(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram is not all zero")
	}
	for _, ms := range []time.Duration{10, 20, 30, 40, 1000} {
		h.Record(ms * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 30 * time.Millisecond},
		{0.8, 40 * time.Millisecond},
		{0.9, 1000 * time.Millisecond}, // the max, exactly
		{0.99, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if got < tt.want || float64(got-tt.want) > float64(tt.want)/subCount {
			t.Errorf("q%v = %v, want %v", tt.q, got, tt.want)
		}
	}
	h.Record(-time.Second) // a clock step backwards counts as 0
	if h.Quantile(0) != 0 {
		t.Errorf("min after a negative value = %v, want 0", h.Quantile(0))
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var parts [3]Histogram
	var all Histogram
	for i := range 3000 {
		d := dur(rng, time.Duration(i+1)*time.Millisecond)
		parts[i%3].Record(d)
		all.Record(d)
	}
	var merged Histogram
	for i := range parts {
		merged.Merge(&parts[i])
	}
	merged.Merge(&Histogram{})
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		if merged.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v: merged %v, direct %v", q, merged.Quantile(q), all.Quantile(q))
		}
	}
	if merged.Count() != all.Count() || merged.Max() != all.Max() || merged.Mean() != all.Mean() {
		t.Errorf("merged count/max/mean %d %v %v, direct %d %v %v",
			merged.Count(), merged.Max(), merged.Mean(), all.Count(), all.Max(), all.Mean())
	}
}

// TestBuckets checks that the buckets tile the values: each value lies in
// its bucket and above the previous bucket.
func TestBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	values := []uint64{0, 1, 255, 256, 257, 511, 512, 1 << 40, math.MaxInt64}
	for range 10000 {
		values = append(values, rng.Uint64N(math.MaxInt64)>>rng.UintN(63))
	}
	for _, v := range values {
		i := bucketOf(v)
		if bucketHigh(i) < v || (i > 0 && bucketHigh(i-1) >= v) {
			t.Fatalf("value %d in bucket %d of (%d, %d]", v, i, bucketHigh(i-1), bucketHigh(i))
		}
	}
}
