package bench

import (
	"maps"
	"strings"
	"testing"
)

func TestParseCounter(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		found  bool
		total  float64
		byVerb map[string]float64
	}{
		{
			name: "client_golang exposition",
			text: `# HELP cistern_store_requests_total Object store requests by pool and verb.
# TYPE cistern_store_requests_total counter
cistern_store_requests_total{pool="default",verb="get"} 12
cistern_store_requests_total{pool="default",verb="put"} 1.5e+06
cistern_store_requests_total{pool="cold",verb="put"} 3
# HELP cistern_store_request_failures_total Failures.
cistern_store_request_failures_total{kind="other",pool="default",verb="put"} 7
`,
			found: true, total: 1500015,
			byVerb: map[string]float64{"get": 12, "put": 1500003},
		},
		{
			name: "names that only start with the counter's",
			text: `cistern_store_requests_total_created{pool="a",verb="put"} 1.7e+09
cistern_store_requests_totals 5
xcistern_store_requests_total 5
cistern_store_requests_total{verb="delete"} 2
`,
			found: true, total: 2, byVerb: map[string]float64{"delete": 2},
		},
		{
			name: "OpenMetrics with timestamps, odd spacing and escapes",
			text: `# TYPE cistern_store_requests counter
cistern_store_requests_total{pool="a\"b,c}",verb="head"} 4 1700000000000
  cistern_store_requests_total { verb = "list" , pool="x\\y" }	6
cistern_store_requests_total 1
# EOF
`,
			found: true, total: 11, byVerb: map[string]float64{"head": 4, "list": 6},
		},
		{
			name: "broken lines are skipped",
			text: `cistern_store_requests_total{verb="get" 9
cistern_store_requests_total{verb=get} 9
cistern_store_requests_total{verb="get"} nine
cistern_store_requests_total{verb="get"}
cistern_store_requests_total{verb="get"} 2
`,
			found: true, total: 2, byVerb: map[string]float64{"get": 2},
		},
		{
			name:   "absent",
			text:   "go_goroutines 12\nprocess_open_fds 9\n",
			byVerb: map[string]float64{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseCounter(strings.NewReader(tt.text), StoreMetric)
			if err != nil {
				t.Fatal(err)
			}
			if s.Found != tt.found || s.Total != tt.total || !maps.Equal(s.ByVerb, tt.byVerb) {
				t.Errorf("got found=%v total=%v by verb %v, want %v %v %v", s.Found, s.Total, s.ByVerb, tt.found, tt.total, tt.byVerb)
			}
		})
	}
}

func TestScrapeCounter(t *testing.T) {
	f := newFakeZaqar(t)
	s, err := ScrapeCounter(t.Context(), f.srv.Client(), f.URL()+"/metrics", StoreMetric)
	if err != nil || !s.Found || s.Total != 0 {
		t.Errorf("fresh fake: %+v, %v; want found, 0", s, err)
	}
	c := NewClient(f.srv.Client(), f.URL(), "p", "")
	if err := c.PostMessages(t.Context(), "q", messagesDoc(3, 10, 60)); err != nil {
		t.Fatal(err)
	}
	if s, err = ScrapeCounter(t.Context(), f.srv.Client(), f.URL()+"/metrics", StoreMetric); err != nil || s.ByVerb["put"] != 1 {
		t.Errorf("after one post: %+v, %v; want put 1", s, err)
	}
	if _, err := ScrapeCounter(t.Context(), f.srv.Client(), f.URL()+"/nothing", StoreMetric); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("scraping a 404: %v", err)
	}
}

func FuzzParseCounter(f *testing.F) {
	f.Add(`cistern_store_requests_total{pool="a",verb="put"} 3`)
	f.Add(`cistern_store_requests_total{pool="a\"",verb="p\\ut\n"} 1e3 17`)
	f.Add(`cistern_store_requests_total{`)
	f.Add(`cistern_store_requests_total{a="`)
	f.Add(`cistern_store_requests_total{a="\`)
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseCounter(strings.NewReader(text), StoreMetric)
		if err == nil && !s.Found && s.Total != 0 {
			t.Errorf("total %v without a sample", s.Total)
		}
	})
}
