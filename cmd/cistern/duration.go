package main

import (
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a pool option's duration (`timeout`), written the same way in
// the config file and in the admin API's pool options: a Go duration string
// such as "60s". It is stored and shown as that string. A JSON number is
// still read as nanoseconds, the form registry entries written before had.
type Duration time.Duration

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "60s", or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want a Go duration such as \"60s\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s: want a Go duration such as \"60s\"", b)
	}
	*d = Duration(n)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads "60s" (time.Duration's own YAML form).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var v time.Duration
	if err := n.Decode(&v); err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
