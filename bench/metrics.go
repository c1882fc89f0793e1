package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// StoreMetric is the Prometheus counter Cistern keeps of its object-store
// requests, labelled pool and verb.
const StoreMetric = "cistern_store_requests_total"

// CounterSample is the sum of one counter's samples at one scrape.
type CounterSample struct {
	Found  bool               // the counter had at least one sample
	Total  float64            // sum over all label sets
	ByVerb map[string]float64 // sum by the "verb" label
}

// ParseCounter sums the samples of the counter named name in a Prometheus
// (or OpenMetrics) text exposition. It reads only what it needs: a sample
// line is `name{label="value",...} value [timestamp]`; comments, other
// metrics and lines it cannot parse are skipped.
func ParseCounter(r io.Reader, name string) (CounterSample, error) {
	s := CounterSample{ByVerb: make(map[string]float64)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ' && rest[0] != '\t') {
			continue // a comment, another metric, or one whose name only starts with name
		}
		var labels map[string]string
		if rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " \t"), "{"); ok {
			if labels, rest, ok = parseLabels(rest); !ok {
				continue
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		s.Found = true
		s.Total += v
		if verb, ok := labels["verb"]; ok {
			s.ByVerb[verb] += v
		}
	}
	return s, sc.Err()
}

// parseLabels parses `a="x",b="y"}` (the text after the opening brace)
// and returns the labels and the text after the closing brace.
func parseLabels(s string) (map[string]string, string, bool) {
	labels := make(map[string]string)
	for {
		s = strings.TrimLeft(s, " \t,")
		if rest, ok := strings.CutPrefix(s, "}"); ok {
			return labels, rest, true
		}
		key, value, ok := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		value, quoted := strings.CutPrefix(strings.TrimLeft(value, " \t"), `"`)
		if !ok || key == "" || !quoted {
			return nil, "", false
		}
		s = value
		var val strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, "", false // unterminated value
		}
		labels[key] = val.String()
		s = s[i+1:]
	}
}

// ScrapeCounter fetches a Prometheus text exposition from url and sums
// the counter's samples. A status other than 200 is an error.
func ScrapeCounter(ctx context.Context, hc *http.Client, url, name string) (CounterSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return CounterSample{}, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := hc.Do(req)
	if err != nil {
		return CounterSample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return CounterSample{}, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return ParseCounter(resp.Body, name)
}
