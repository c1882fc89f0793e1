package main

import (
	"reflect"
	"regexp"
	"strings"
)

// The drivers' config checks name their Go fields (AuthURL, KeyPrefix);
// an operator writes the configuration file's keys (auth_url, key_prefix).
// withConfigKeys says the same thing in the file's words.

// keyedError is err with its message in the configuration's keys; it
// still matches what err matches.
type keyedError struct {
	msg string
	err error
}

func (e *keyedError) Error() string { return e.msg }
func (e *keyedError) Unwrap() error { return e.err }

// withConfigKeys rewrites the Go field names of cfg (a struct with yaml
// tags) in err's message as their keys.
func withConfigKeys(err error, cfg any) error {
	if err == nil {
		return nil
	}
	t := reflect.TypeOf(cfg)
	msg := err.Error()
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" || key == f.Name {
			continue
		}
		msg = regexp.MustCompile(`\b`+regexp.QuoteMeta(f.Name)+`\b`).ReplaceAllString(msg, key)
	}
	return &keyedError{msg: msg, err: err}
}
