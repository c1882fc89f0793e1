package faultstore

import (
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

func TestParseSpec(t *testing.T) {
	o, rules, err := ParseSpec(" seed=7  put=unavailable:0.05 *=delay:0.1:2ms get=torn:1 delete@q-=lost:0.5 ")
	if err != nil {
		t.Fatal(err)
	}
	if o.Seed != 7 || len(rules) != 4 {
		t.Fatalf("seed %d, %d rules", o.Seed, len(rules))
	}
	if r := rules[0]; r.Effect != Fail || r.Err != drivers.ErrUnavailable || r.Prob != 0.05 || len(r.Verbs) != 1 || r.Verbs[0] != Put {
		t.Errorf("rule 0 = %+v", r)
	}
	if r := rules[1]; r.Effect != Delay || r.Latency != 2*time.Millisecond || r.Verbs != nil {
		t.Errorf("rule 1 = %+v", r)
	}
	if r := rules[2]; r.Effect != Torn || r.Prob != 1 {
		t.Errorf("rule 2 = %+v", r)
	}
	if r := rules[3]; r.Effect != LostAnswer || r.Verbs[0] != Delete || r.ContainerPrefix != "q-" {
		t.Errorf("rule 3 = %+v", r)
	}
	for _, bad := range []string{"seed=x", "put", "put=boom:0.1", "bogus=invalid:0.1", "put=invalid:0", "put=invalid:1.5", "put=delay:0.1:soon", "put=invalid"} {
		if _, _, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) accepted", bad)
		}
	}
}
