package s3driver

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cistern-mq/cistern/drivers"
)

func TestKeyMapping(t *testing.T) {
	for _, prefix := range []string{"", "pool-1/", "a/b/"} {
		s := &Store{prefix: prefix}
		if got, want := s.objectKey("q1", "log/000"), prefix+"q1/log/000"; got != want {
			t.Errorf("objectKey = %q, want %q", got, want)
		}
		if got, want := s.containerPrefix("q1"), prefix+"q1/"; got != want {
			t.Errorf("containerPrefix = %q, want %q", got, want)
		}
		if got, want := s.markerKey("q1"), prefix+".containers/q1"; got != want {
			t.Errorf("markerKey = %q, want %q", got, want)
		}
		// A container's keys never reach another container's prefix, a
		// marker or a probe: valid names cannot start with '.'.
		for _, c := range []string{"a", "a.b", "a-", "A_1"} {
			for _, reserved := range []string{markerDir, probeDir} {
				if strings.HasPrefix(s.containerPrefix(c), prefix+reserved) {
					t.Errorf("container %q collides with %q", c, reserved)
				}
			}
			if other := s.containerPrefix("a"); c != "a" && strings.HasPrefix(s.objectKey(c, "k"), other) {
				t.Errorf("container %q's keys fall under %q", c, other)
			}
		}
	}
}

func TestCheckKey(t *testing.T) {
	flat := &Store{prefix: "p/"}
	paths := &Store{prefix: "p/", pathKeys: true}
	long := strings.Repeat("k", drivers.MaxKeyLen)
	cases := []struct {
		key         string
		flat, paths error
	}{
		{"log/00000000000000000001", nil, nil},
		{"meta", nil, nil},
		{long, nil, drivers.ErrInvalid}, // one segment over NAME_MAX
		{long + "k", drivers.ErrInvalid, drivers.ErrInvalid},
		{"../escape", nil, drivers.ErrInvalid},
		{"a/./b", nil, drivers.ErrInvalid},
		{".", nil, drivers.ErrInvalid},
		{"...", nil, nil},
		{".hidden", nil, nil},
		{"a//b", nil, drivers.ErrInvalid},
		{"/leading", nil, drivers.ErrInvalid},
		{"trailing/", nil, drivers.ErrInvalid},
		{"", drivers.ErrInvalid, drivers.ErrInvalid},
		{"nul\x00", drivers.ErrInvalid, drivers.ErrInvalid},
	}
	// The whole S3 key, prefix and container included, must fit 1024 bytes.
	longPrefix := &Store{prefix: strings.Repeat("p", 300) + "/"}
	if err := longPrefix.checkKey("c", long); !errors.Is(err, drivers.ErrInvalid) {
		t.Errorf("a key that fits only without the prefix: %v, want ErrInvalid", err)
	}
	for _, tc := range cases {
		if err := flat.checkKey("c", tc.key); !errors.Is(err, tc.flat) && (err != nil || tc.flat != nil) {
			t.Errorf("flat store: checkKey(%.20q) = %v, want %v", tc.key, err, tc.flat)
		}
		if err := paths.checkKey("c", tc.key); !errors.Is(err, tc.paths) && (err != nil || tc.paths != nil) {
			t.Errorf("path store: checkKey(%.20q) = %v, want %v", tc.key, err, tc.paths)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Bucket: "b"}
	cases := []struct {
		name  string
		edit  func(*Config)
		valid bool
	}{
		{"minimal", func(*Config) {}, true},
		{"full", func(c *Config) {
			c.Endpoint, c.AccessKey, c.SecretKey, c.KeyPrefix = "http://127.0.0.1:8080", "a", "s", "cistern/pool1/"
		}, true},
		{"no bucket", func(c *Config) { c.Bucket = "" }, false},
		{"half credentials", func(c *Config) { c.AccessKey = "a" }, false},
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "127.0.0.1:8080" }, false},
		{"prefix without slash", func(c *Config) { c.KeyPrefix = "cistern" }, false},
		{"prefix with dot segment", func(c *Config) { c.KeyPrefix = "a/../" }, false},
		{"prefix with empty segment", func(c *Config) { c.KeyPrefix = "/a/" }, false},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, false},
	}
	for _, tc := range cases {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if (err == nil) != tc.valid {
			t.Errorf("%s: Validate() = %v, want valid %v", tc.name, err, tc.valid)
		}
		if err != nil && !errors.Is(err, drivers.ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", tc.name, err)
		}
	}
}

func TestRangeHeader(t *testing.T) {
	for _, tc := range []struct {
		r    drivers.Range
		want string
	}{
		{drivers.Range{Offset: 0, Length: 4}, "bytes=0-3"},
		{drivers.Range{Offset: 5, Length: 1}, "bytes=5-5"},
		{drivers.Range{Offset: 15, Length: -1}, "bytes=15-"},
	} {
		if got := rangeHeader(&tc.r); got != tc.want {
			t.Errorf("rangeHeader(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestDecodeKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		enc  types.EncodingType
		want string
	}{
		{"q/plus%2Bsign", types.EncodingTypeUrl, "q/plus+sign"},
		{"q/a+space", types.EncodingTypeUrl, "q/a space"}, // AWS: space as '+'
		{"q/a%20space", types.EncodingTypeUrl, "q/a space"},
		{"q/%252F", types.EncodingTypeUrl, "q/%2F"},
		{"q/tab%09", types.EncodingTypeUrl, "q/tab\t"},
		{"q/plus+raw%", "", "q/plus+raw%"}, // not encoded: left alone
	} {
		got, err := decodeKey(tc.in, tc.enc)
		if err != nil || got != tc.want {
			t.Errorf("decodeKey(%q, %q) = %q, %v; want %q", tc.in, tc.enc, got, err, tc.want)
		}
	}
	if _, err := decodeKey("bad%zz", types.EncodingTypeUrl); err == nil {
		t.Errorf("decodeKey of a bad escape: no error")
	}
}

func TestXMLSafe(t *testing.T) {
	for k, want := range map[string]bool{
		"log/1": true, "tab\there": true, "nl\n": true, "日本": true,
		"bell\x07": false, "esc\x1b": false, "nonchar\uFFFE": false,
	} {
		if got := xmlSafe(k); got != want {
			t.Errorf("xmlSafe(%q) = %v, want %v", k, got, want)
		}
	}
}
